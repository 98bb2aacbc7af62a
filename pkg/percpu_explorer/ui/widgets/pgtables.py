"""The page-table walk explorer (`PageTableExplorer`)."""

from __future__ import annotations

from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

from ...errors import InputError
from ...kernel import (
    KernelConfig,
    KernelPageTables,
    Walk,
    broken_layout_reason,
    build_first_chunk,
    compute_layout,
    parse_addr,
    patched_sane_configs,
    unit_addresses,
)
from .. import plots
from .panel import ControlPanel, Explorer


class PageTableExplorer(Explorer):
    """A page-table walk of a chosen address on a chosen CPU, over the tables of a kernel
    booted with the percpu first chunk mapped (`kernel.build_first_chunk`). The title
    names the configuration, so every panel control changes the figure. A patched layout
    whose areas do not fit has no tables to walk: the panel says why, in the kernel's
    numbers."""

    name = "page tables"
    ADDRESSES = ("percpu unit (linear map)", "Local Percpu (first chunk)",
                 "Global Percpu (first chunk)", "VMALLOC_START (unmapped)", "custom")

    def __init__(self, panel: ControlPanel | None = None, **values: Any) -> None:
        self.kpt: KernelPageTables | None = None
        self.walk: Walk | None = None
        self._kpt_changes = 0  # kpt.changes when the figure shown was drawn
        super().__init__(panel, **values)

    def _make_controls(self) -> dict[str, W.ValueWidget]:
        return {
            "cpu": W.Dropdown(options=[0, 1], value=0, description="CPU"),
            "address": W.Dropdown(options=self.ADDRESSES, value=self.ADDRESSES[0],
                                  description="address"),
            "custom": W.Text(value="", description="custom VA", placeholder="0xffff..."),
        }

    def _sync_controls(self, cfg: KernelConfig) -> None:
        cpu = self.controls["cpu"]
        options = list(range(cfg.nr_cpus))
        if list(cpu.options) != options:
            value = min(cpu.value, cfg.nr_cpus - 1)
            cpu.options = options
            cpu.value = value
        address = self.controls["address"]
        offered = tuple(a for a in self.ADDRESSES if cfg.local_percpu or "first chunk" not in a)
        if tuple(address.options) != offered:
            value = address.value if address.value in offered else offered[0]
            address.options = offered
            address.value = value

    def address_of(self, kpt: KernelPageTables, cpu: int) -> int:
        """The VA the `address` control names for `cpu`."""
        choice = self.controls["address"].value
        if choice == "custom":
            return parse_addr(self.controls["custom"].value, name="custom VA")
        if choice.startswith("VMALLOC_START"):
            return kpt.layout.symbols["VMALLOC_START"]
        unit = unit_addresses(kpt, cpu)
        if choice.startswith("percpu unit"):
            return unit.linear
        va = unit.local if choice.startswith("Local") else unit.global_
        if va is None:
            raise ValueError(f"the {choice} exists only with local percpu (RFC 02/11)")
        return va

    def _build(self, cfg: KernelConfig) -> go.Figure:
        if cfg.local_percpu:
            reason = broken_layout_reason(compute_layout(cfg), brief=True)
            if reason:
                fit = ", ".join(dict.fromkeys(
                    f"{c.page_size_name}/{c.va_bits}"
                    for c in patched_sane_configs(cfg.kernel, kasan=(cfg.kasan,))))
                raise InputError(f"{reason}, so there are no per-CPU page tables to walk. "
                                 f"The areas fit with page size/VA bits {fit}",
                                 field="local_percpu")
        kpt = self._tables(cfg)
        cpu = self.controls["cpu"].value
        walk = kpt.walk(cpu, self.address_of(kpt, cpu))
        fig = plots.walk_figure(walk, kpt.geometry, nr_cpus=kpt.nr_cpus,
                                address=self.controls["address"].value)
        # only once the figure is drawn
        self.kpt, self.walk, self._kpt_changes = kpt, walk, kpt.changes
        return fig

    def _tables(self, cfg: KernelConfig) -> KernelPageTables:
        """The first chunk's tables of `cfg`: those the figure shown walked when it was
        drawn from the same configuration and nothing has changed them since (a new CPU
        or address walks the same tables), else built anew."""
        kpt = self.kpt
        if kpt is not None and kpt.config == cfg and kpt.changes == self._kpt_changes:
            return kpt
        return build_first_chunk(cfg)

    def _on_control(self, change: dict[str, Any]) -> None:
        """Typing a custom address walks it: the address choice moves to "custom"."""
        address = self.controls["address"]
        if (change["owner"] is self.controls["custom"] and not self._quiet
                and change["new"].strip() and address.value != "custom"):
            self._quiet = True
            try:
                address.value = "custom"
            finally:
                self._quiet = False
        super()._on_control(change)
