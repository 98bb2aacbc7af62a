"""The model held against a capture: every layout value the kernel shows, the first
chunk's facts and boot lines, the percpu trace replayed through the allocator model,
and the allocator's final state against percpu_stats.

`ParsedCapture` is one bundle's texts parsed (each at most once) with the
`KernelConfig` they describe and the model's `Layout` for it; `layout_comparison`,
`first_dynamic_chunk_end`, `first_chunk_comparison` and `compare` take it or a bundle.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pandas as pd

from ..errors import InputError
from ..kernel import KernelConfig, Layout, compute_layout
from ..percpu import PercpuBuild, TraceReplay, boot_lines, build_alloc_info, replay_trace
from .bundle import CaptureBundle, derive_config
from .parsers import (
    FirstChunkInfo,
    parse_dmesg,
    parse_percpu_stats,
    parse_trace,
    parse_vmcoreinfo,
    percpu_events,
    percpu_first_chunk,
    ptdump_markers,
    vmcoreinfo_numbers,
)


@dataclass(frozen=True, eq=False)
class ParsedCapture:
    """A bundle's texts as the comparison reads them. Each view is computed the first
    time it is asked for and kept, so every text is parsed at most once and the config
    derived once however many comparisons read them; a view of a text the bundle lacks
    is None."""

    bundle: CaptureBundle

    @classmethod
    def of(cls, capture: CaptureBundle | ParsedCapture) -> ParsedCapture:
        """`capture` itself when it is parsed already, else a parsed view of the bundle."""
        return capture if isinstance(capture, ParsedCapture) else cls(capture)

    @property
    def name(self) -> str:
        return self.bundle.name

    def _text(self, source: str) -> str | None:
        return self.bundle.texts.get(source)

    @cached_property
    def vmcoreinfo(self) -> pd.DataFrame | None:
        """`parse_vmcoreinfo` of the VMCOREINFO note."""
        text = self._text("vmcoreinfo")
        return None if text is None else parse_vmcoreinfo(text)

    @cached_property
    def numbers(self) -> dict[str, int] | None:
        """`vmcoreinfo_numbers`: the NUMBER(...) entries, KERNELOFFSET and vabits_actual."""
        return None if self.vmcoreinfo is None else vmcoreinfo_numbers(self.vmcoreinfo)

    @cached_property
    def markers(self) -> pd.DataFrame | None:
        """`ptdump_markers`: each ptdump marker and the address the walk crossed it at."""
        text = self._text("ptdump")
        return None if text is None else ptdump_markers(text)

    @cached_property
    def dmesg(self) -> pd.DataFrame | None:
        """`parse_dmesg` of the kernel log."""
        text = self._text("dmesg")
        return None if text is None else parse_dmesg(text)

    @cached_property
    def first_chunk(self) -> FirstChunkInfo | None:
        """`percpu_first_chunk`: what the kernel log says about the first chunk."""
        return None if self.dmesg is None else percpu_first_chunk(self.dmesg)

    @cached_property
    def trace(self) -> pd.DataFrame | None:
        """`parse_trace` of the tracing output."""
        text = self._text("trace")
        return None if text is None else parse_trace(text)

    @cached_property
    def events(self) -> pd.DataFrame | None:
        """`percpu_events`: the trace's percpu:* events in buffer order."""
        return None if self.trace is None else percpu_events(self.trace)

    @cached_property
    def percpu_stats(self) -> pd.DataFrame | None:
        """`parse_percpu_stats` of debugfs percpu_stats."""
        text = self._text("percpu_stats")
        return None if text is None else parse_percpu_stats(text)

    @cached_property
    def config(self) -> KernelConfig:
        """`derive_config` of the bundle, with the VMCOREINFO numbers parsed here."""
        return derive_config(self.bundle, self.numbers)

    @property
    def patched(self) -> bool:
        """Whether the captured kernel carries RFC patch 02/11 (meta "patched", set by
        `captures.kbuild` for a `--patched` build)."""
        return bool(self.bundle.meta.get("patched"))

    @cached_property
    def layout(self) -> Layout:
        """The model's layout of the captured kernel's configuration; with patch 02/11
        when the kernel carries it (`patched`)."""
        cfg = self.config.replace(local_percpu=True) if self.patched else self.config
        return compute_layout(cfg)

    def __repr__(self) -> str:
        return f"ParsedCapture({self.name!r}, sources {sorted(self.bundle.texts)})"


# VMCOREINFO NUMBER(...) entries (arch/arm64/kernel/vmcore_info.c) and the model symbol
# each one is.
VMCOREINFO_SYMBOLS: tuple[tuple[str, str], ...] = (
    ("VA_BITS", "VA_BITS"),
    ("vabits_actual", "vabits_actual"),
    ("MODULES_VADDR", "MODULES_VADDR"),
    ("MODULES_END", "MODULES_END"),
    ("VMALLOC_START", "VMALLOC_START"),
    ("VMALLOC_END", "VMALLOC_END"),
    ("VMEMMAP_START", "VMEMMAP_START"),
    ("VMEMMAP_END", "VMEMMAP_END"),
)
COMPARISON_COLUMNS = ["source", "item", "model", "real", "match", "note"]


def layout_comparison(capture: CaptureBundle | ParsedCapture,
                      layout: Layout | None = None) -> pd.DataFrame:
    """Marker by marker and symbol by symbol: the model's value, the real one, equal or not.

    Sources, where the capture has them:
    - vmcoreinfo: the NUMBER(...) layout entries and PAGESIZE, exact kernel values;
    - ptdump: each `---[ label ]---` marker at the address the walk crossed it; the
      walk starts at _PAGE_OFFSET(vabits_actual) (ptdump_init's base_addr), so the
      model's value of a marker below that is the walk start;
    - trace + kernel log: where the first dynamic chunk ends (`first_dynamic_chunk_end`).
    `layout` is the model's layout to hold against the capture (default: that of the
    derived config). Columns: source, item, model, real, match, note.
    """
    capture = ParsedCapture.of(capture)
    layout = layout if layout is not None else capture.layout
    sym = layout.symbols
    rows: list[dict[str, Any]] = []

    def add(source: str, item: str, model: int | None, real: int | None, note: str = "") -> None:
        rows.append({"source": source, "item": item, "model": model, "real": real,
                     "match": model is not None and model == real, "note": note})

    if capture.vmcoreinfo is not None and capture.numbers is not None:
        frame, numbers = capture.vmcoreinfo, capture.numbers
        for name, symbol in VMCOREINFO_SYMBOLS:
            if name in numbers:
                note = "64 - NUMBER(TCR_EL1_T1SZ)" if name == "vabits_actual" else ""
                add("vmcoreinfo", name, sym[symbol], numbers[name], note)
        pagesize = frame[frame["kind"] == "PAGESIZE"]["number"]
        if len(pagesize):
            add("vmcoreinfo", "PAGESIZE", sym["PAGE_SIZE"], int(pagesize.iloc[0]))
    if capture.markers is not None:
        real = capture.markers
        walk_start = sym["_PAGE_OFFSET(vabits_actual)"]
        seen = dict(zip(real["label"], real["address"], strict=True))
        for marker in layout.markers:
            expected = max(marker.address, walk_start)
            note = ("below the walk start _PAGE_OFFSET(vabits_actual)"
                    if expected != marker.address else "")
            if marker.label not in seen:
                note = "marker absent from the capture"
            add("ptdump", marker.label, expected, seen.get(marker.label), note)
        for label in seen.keys() - {m.label for m in layout.markers}:
            add("ptdump", label, None, seen[label], "marker unknown to the model")
    first_end = first_dynamic_chunk_end(capture)
    if first_end is not None:
        add("trace", "first dynamic chunk end", sym["VMALLOC_END"], first_end,
            "first percpu_create_chunk base_addr + nr_units * unit_size")
    frame = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    frame["match"] = frame["match"].astype(bool)
    return frame


def first_dynamic_chunk_end(capture: CaptureBundle | ParsedCapture) -> int | None:
    """End of the first dynamic chunk's vm area: the first `percpu_create_chunk`
    base_addr plus the group's nr_units * unit_size (kernel log), or None without them.

    pcpu_create_chunk() calls pcpu_get_vm_areas(), which searches vmalloc downwards
    from VMALLOC_END (aligned down to the atom size); the first chunk finds the top
    free, so with one unit group this end is VMALLOC_END itself. (chunk->base_addr is
    the area's start minus the group's offset, 0 for a single group.)
    """
    capture = ParsedCapture.of(capture)
    if not {"trace", "dmesg"} <= capture.bundle.texts.keys():
        return None
    first, trace = capture.first_chunk, capture.trace
    if first is None or trace is None:
        return None
    created = trace[trace["event"] == "percpu_create_chunk"]
    if first.unit_size is None or len(first.groups) != 1 or not len(created):
        return None
    return int(created["base_addr"].iloc[0]) + first.nr_units * first.unit_size


def first_chunk_comparison(capture: CaptureBundle | ParsedCapture) -> pd.DataFrame:
    """The allocator model's first chunk (`build_alloc_info`, i.e.
    pcpu_build_alloc_info()) against the kernel log, field by field and line by line.

    The model takes the one number it cannot compute, the kernel's static percpu size
    (`s` in the log), and the possible CPUs (the units the log lists, one NUMA node);
    everything else (reserved, dynamic and unit size, pages per CPU, allocation size,
    groups, and the exact `percpu:` / `pcpu-alloc:` lines) is the model's.
    Columns: COMPARISON_COLUMNS (source "dmesg"); line rows hold the texts.
    """
    capture = ParsedCapture.of(capture)
    if capture.dmesg is None:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    info = capture.first_chunk
    if info is None or info.kind != "Embedded" or len(info.groups) != 1:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    facts = capture.bundle.meta.get("config") or {}
    page_size = capture.config.page_size
    build = PercpuBuild(modules=facts.get("CONFIG_MODULES") == "y",
                        mem_alloc_profiling=facts.get("CONFIG_MEM_ALLOC_PROFILING") == "y",
                        random_kmalloc_caches=facts.get("CONFIG_RANDOM_KMALLOC_CACHES") == "y",
                        lockdep=facts.get("CONFIG_LOCKDEP") == "y")
    ai = build_alloc_info(info.static_size, nr_cpus=info.nr_cpus, page_size=page_size,
                          build=build)
    rows: list[dict[str, Any]] = []
    for item, model, real in (
        ("reserved_size", ai.reserved_size, info.reserved_size),
        ("dyn_size", ai.dyn_size, info.dyn_size),
        ("unit_size", ai.unit_size, info.unit_size),
        ("pages/cpu", ai.size_sum // page_size, info.pages_per_cpu),
        ("alloc_size / atom_size", ai.alloc_size // ai.atom_size, info.alloc_atoms),
        ("atom_size", ai.atom_size, info.atom_size),
        ("nr_units", ai.nr_units, info.nr_units),
    ):
        rows.append({"source": "dmesg", "item": item, "model": model, "real": real,
                     "match": model == real, "note": ""})
    real_lines = [m.rstrip() for m in capture.dmesg["message"]
                  if m.startswith(("percpu: Embedded", "pcpu-alloc: "))]
    model_lines = [line.rstrip() for line in boot_lines(ai)]
    for number in range(max(len(real_lines), len(model_lines))):
        model_line = model_lines[number] if number < len(model_lines) else None
        real_line = real_lines[number] if number < len(real_lines) else None
        rows.append({"source": "dmesg", "item": f"log line {number + 1}", "model": model_line,
                     "real": real_line, "match": model_line == real_line, "note": ""})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


@dataclass(frozen=True)
class CaptureComparison:
    """`compare()`'s result: the derived config, the model's layout, the layout table
    (`layout_rows`, see `layout_comparison`), the first-chunk facts from the log, the
    percpu trace events ready for an allocator replay, and the RFC (patch 02/11)
    layout for the same configuration with its problems."""

    bundle_name: str
    config: KernelConfig
    layout: Layout
    layout_rows: pd.DataFrame
    first_chunk: FirstChunkInfo | None
    events: pd.DataFrame | None
    rfc_layout: Layout | None
    rfc_error: str | None = None
    first_chunk_rows: pd.DataFrame | None = None
    replay: TraceReplay | None = None
    stats_rows: pd.DataFrame | None = None
    unit_count_source: str | None = None

    @property
    def agreed(self) -> int:
        return int(self.layout_rows["match"].sum())

    @property
    def disagreements(self) -> pd.DataFrame:
        return self.layout_rows[~self.layout_rows["match"]]

    def __repr__(self) -> str:
        return (f"CaptureComparison({self.bundle_name!r}, {self.config.label()}, "
                f"{self.agreed}/{len(self.layout_rows)} layout values agree)")


def compare(capture: CaptureBundle | ParsedCapture) -> CaptureComparison:
    """Hold the model against a capture: derive the KernelConfig, compute the layout of
    that kernel's era, compare every value the capture shows (`layout_comparison`), and
    compute what RFC patch 02/11 would make of the same configuration.

    With a trace and the percpu boot lines, the trace's percpu events are replayed
    through the allocator model (`replay_trace`), and with percpu_stats the model's
    final state is compared with the kernel's (`stats_comparison`). Every text is
    parsed once and the config derived once (`ParsedCapture`)."""
    capture = ParsedCapture.of(capture)
    cfg = capture.config
    layout = capture.layout
    first = capture.first_chunk
    events = capture.events
    rfc: Layout | None = None
    rfc_error: str | None = None
    try:
        rfc = compute_layout(cfg.replace(local_percpu=True))
    except ValueError as exc:
        rfc_error = str(exc)
    replay: TraceReplay | None = None
    stats_rows: pd.DataFrame | None = None
    unit_source: str | None = None
    if events is not None and first is not None and len(events):
        nr_units = first.nr_units
        if not nr_units:
            nr_units, unit_source = unit_count(capture)
        ai = build_alloc_info(first.static_size, nr_cpus=nr_units,
                              page_size=cfg.page_size, reserved_size=first.reserved_size,
                              dyn_size=first.dyn_size, atom_size=first.atom_size)
        busy: list[tuple[int, int]] = []
        if capture.patched:
            # Patch 02/11 alone lowers VMALLOC_END; chunks still come from vmalloc.
            unpatched_end = compute_layout(cfg)["VMALLOC_END"]
            busy.append((layout["VMALLOC_END"], unpatched_end))
        replay = replay_trace(events, ai, cfg, vm_busy=busy)
        if unit_source is not None:
            replay = dataclasses.replace(replay, assumptions=(
                *replay.assumptions, f"{nr_units} units (the log lacks its pcpu-alloc: lines): "
                f"the CPU count from {unit_source}"))
        if capture.percpu_stats is not None:
            stats_rows = stats_comparison(replay, capture.percpu_stats)
    return CaptureComparison(capture.name, cfg, layout, layout_comparison(capture),
                             first, events, rfc, rfc_error, first_chunk_comparison(capture),
                             replay, stats_rows, unit_source)


_RCU_CPU_IDS = re.compile(r"RCU restricting CPUs from NR_CPUS=\d+ to nr_cpu_ids=(\d+)")
_SMP_UP = re.compile(r"^smp: Brought up \d+ nodes?, (\d+) CPUs?")
MISSING_UNITS = ("its kernel log has the 'percpu: Embedded' line but not the 'pcpu-alloc:' "
                 "lines that list the units (KERN_DEBUG: a console log at the default loglevel "
                 "hides them), and no other line gives the CPU count; capture the log with "
                 "`dmesg` (the ring buffer keeps them) or boot with ignore_loglevel")


def unit_count(capture: CaptureBundle | ParsedCapture) -> tuple[int, str]:
    """The first chunk's unit count when the log lacks its `pcpu-alloc:` lines, and the
    line it was taken from: nr_cpu_ids from RCU's "restricting CPUs" line (the possible
    CPUs, one unit each), else the CPUs online (the trace header's #P, "smp: Brought up",
    /proc/cpuinfo), else the highest CPU of the trace plus one. InputError naming the
    missing lines when the capture shows none of these."""
    capture = ParsedCapture.of(capture)
    messages = [] if capture.dmesg is None else list(capture.dmesg["message"])
    for message in messages:
        match = _RCU_CPU_IDS.search(message)
        if match and int(match[1]) > 0:
            return int(match[1]), f"kernel log: {message.strip()}"
    trace = capture.trace
    if trace is not None and trace.attrs.get("nr_cpus"):
        return int(trace.attrs["nr_cpus"]), "trace header #P (CPUs online)"
    for message in messages:
        match = _SMP_UP.search(message)
        if match and int(match[1]) > 0:
            return int(match[1]), f"kernel log: {message.strip()} (CPUs online)"
    cpuinfo = capture.bundle.texts.get("cpuinfo")
    if cpuinfo:
        count = sum(line.split(":")[0].strip() == "processor" for line in cpuinfo.splitlines())
        if count:
            return count, "cpuinfo processors (CPUs online)"
    if trace is not None and trace["cpu"].notna().any():
        return (int(trace["cpu"].max()) + 1,
                "the trace's highest CPU + 1 (a lower bound of the CPUs)")
    raise InputError(f"capture {capture.name!r}: {MISSING_UNITS}")


# Fields of percpu_stats that count or describe allocations the trace cannot show: those
# made before tracing started (first chunk) and after the capture turned tracing off (the
# processes that read the files, e.g. mm_init()'s counters of the reader itself).
UNTRACED_NOTE = ("includes allocations the trace does not show (before tracing started, "
                 "after it was turned off)")


def stats_comparison(replay: TraceReplay, real: pd.DataFrame) -> pd.DataFrame:
    """The model's percpu_stats after the replay against the kernel's (`real`, as
    `parse_percpu_stats` gives it), field by field (columns: section, chunk, key, model,
    real, match, note). Chunks are compared in the order the kernel lists them
    (reserved, then by slot)."""
    rows: list[dict[str, Any]] = []
    model = replay.final_stats
    for key, value in (real[real["section"] == "Global Stats"]
                       .set_index("key")["value"].items()):
        rows.append({"section": "global", "chunk": None, "key": key,
                     "model": model["global"].get(key), "real": int(value)})
    chunks = real[real["section"] == "Per Chunk Stats"]
    for index, (_chunk, group) in enumerate(chunks.groupby("chunk", sort=True)):
        label = group["chunk_label"].iloc[0]
        mine = model["chunks"][index] if index < len(model["chunks"]) else {}
        for key, value in group.set_index("key")["value"].items():
            rows.append({"section": "chunk", "chunk": f"{index} {label or ''}".strip(),
                         "key": key, "model": mine.get(key), "real": int(value)})
    frame = pd.DataFrame(rows, columns=["section", "chunk", "key", "model", "real"])
    frame["match"] = frame["model"] == frame["real"]
    frame["note"] = ""
    frame.loc[~frame["match"], "note"] = UNTRACED_NOTE
    return frame
