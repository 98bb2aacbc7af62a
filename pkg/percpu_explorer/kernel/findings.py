"""The answers of the address-space and page-table notebooks, each a `findings.Finding`
computed from the models, and the readable evidence tables behind them.

  layout_finding        where patch 02/11 puts its two areas, what vmalloc loses, where
                        they do not fit (kernel arithmetic: the patch's macros)
  broken_layout_reason  why a broken patched layout cannot be walked, in the kernel's
                        numbers (None for a sane one)
  layout_problems       a layout's problems, one row each
  page_tables_finding   one Local Percpu address, each CPU's own copy, and the tables it
                        costs (assumption: patch 01/11's per-CPU roots)
  skip_rule_finding     the sync skip at LOCAL_PERCPU_END (assumption: patch 01/11's sync)
  skip_rule_table       the four cases behind it, readable
  pgtable_cost_finding  page-table memory, mainline against the patches, with its total
  pgtable_cost_table    the same per level, with a total row
  sync_stream_finding   how often a stream of vmalloc areas syncs the roots, per PGDIR_SIZE
  shared_tlb_answer     what a TLB entry shared by two CPUs would do (why CnP stays clear)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from ..errors import InputError
from ..findings import Finding
from .config import (
    KernelConfig,
    local_percpu_refusal,
    local_percpu_supported,
    valid_configs,
)
from .geometry import page_offset
from .layout import Layout, compute_layout
from .rfc import DEFAULT_PLACEMENT, ROOTS_ASSUMPTION, SYNC_ASSUMPTION
from .scenarios import (
    DEFAULT_UNIT_SIZE,
    build_first_chunk,
    first_chunk_unit,
    first_chunk_va,
    pgtable_cost,
    shared_tlb_finding,
    skip_rule_boundary,
    sync_stream_table,
    unit_pa,
)
from .units import fmt_addr, format_size

__all__ = [
    "LAYOUT_QUESTION",
    "PAGE_TABLES_QUESTION",
    "broken_layout_reason",
    "layout_finding",
    "layout_problems",
    "page_tables_finding",
    "pgtable_cost_finding",
    "pgtable_cost_table",
    "shared_tlb_answer",
    "skip_rule_finding",
    "skip_rule_table",
    "sync_stream_finding",
]

LAYOUT_QUESTION = ("Where does RFC patch 02/11 put its Global and Local Percpu areas in the "
                   "arm64 kernel's address space, what does that cost vmalloc, and where do "
                   "the areas not fit?")
PAGE_TABLES_QUESTION = ("With per-CPU kernel page tables (RFC 01/11) and the Local Percpu "
                        "area (02/11), does one address lead each CPU to its own copy, and "
                        "what do the extra tables cost?")


def _where(cfg: KernelConfig) -> str:
    return f"{cfg.label()}, kernel {cfg.kernel}"


def _names(items: Iterable[str]) -> str:
    items = list(items)
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def broken_layout_reason(layout: Layout, *, brief: bool = False) -> str | None:
    """Why the two areas of a patched layout do not fit, in the kernel's numbers; None
    when the layout has no problems. Patch 02/11 puts both areas, 2 * PERCPU_SIZE, below
    LOCAL_PERCPU_END; they fit only if that leaves VMALLOC_END above VMALLOC_START.
    `brief`: the first reason only (for a control panel's message line)."""
    if not layout.problems:
        return None
    cfg, sym = layout.config, layout.symbols
    if not cfg.local_percpu:
        return _names(f.message.rstrip(".") for f in layout.problems)
    area, end, start = sym["PERCPU_SIZE"], sym["LOCAL_PERCPU_END"], sym["VMALLOC_START"]
    text = (f"the patched layout is broken: its two percpu areas of 2 * PGDIR_SIZE = "
            f"{format_size(area)} each must lie below LOCAL_PERCPU_END {fmt_addr(end)}"
            + ("" if brief else f" (the start of vmemmap aligned down to PGDIR_SIZE, "
               f"{format_size(sym['PGDIR_SIZE'])})") + ", ")
    if end <= start:
        text += f"which is not even above VMALLOC_START {fmt_addr(start)}"
    else:
        text += (f"but only {format_size(end - start)} lies between VMALLOC_START "
                 f"{fmt_addr(start)} and it, not {format_size(2 * area)}")
    if not brief:
        text += (f"; PERCPU_START comes out at {fmt_addr(sym['PERCPU_START'])} and "
                 f"VMALLOC_END {fmt_addr(sym['VMALLOC_END'])} falls below VMALLOC_START")
        low = page_offset(cfg.vabits_actual)
        if sym["PERCPU_START"] < low:
            text += (f"; the areas start below {fmt_addr(low)}, the lowest address TTBR1 "
                     f"translates with {cfg.vabits_actual}-bit VA")
    return text + f" ({len(layout.problems)} problems in all)"


def layout_problems(layout: Layout) -> pd.DataFrame:
    """The layout's problems, one row each: code, the regions named, the kernel's numbers."""
    return pd.DataFrame([{"problem": f.code, "regions": ", ".join(f.regions),
                          "what the kernel computes": f.message} for f in layout.problems],
                        columns=["problem", "regions", "what the kernel computes"])


def _sane_elsewhere(cfg: KernelConfig) -> tuple[list[str], list[str]]:
    """(labels of the valid configurations of cfg's kernel and KASAN mode, those whose
    patched layout is broken)."""
    labels, broken = [], []
    for c in valid_configs(cfg.kernel, kasan=(cfg.kasan,), nr_cpus=cfg.nr_cpus):
        labels.append(c.label())
        if compute_layout(c.replace(local_percpu=True)).problems:
            broken.append(c.label())
    return labels, broken


def layout_finding(cfg: KernelConfig) -> Finding:
    """Patch 02/11 on `cfg`'s layout: the two areas' size and place and what vmalloc
    loses, or why they do not fit; then the configurations of the same kernel (and KASAN
    mode) where they do not fit. Kernel arithmetic: the patch's macros of asm/pgtable.h."""
    base = cfg.replace(local_percpu=False)
    if not local_percpu_supported(base.kernel):
        return Finding(LAYOUT_QUESTION, local_percpu_refusal(base.kernel) + ".",
                       "kernel arithmetic", {"kernel": base.kernel})
    mainline, patched = compute_layout(base), compute_layout(base.replace(local_percpu=True))
    sym = patched.symbols
    labels, broken = _sane_elsewhere(base)
    numbers: dict[str, Any] = {
        "PGDIR_SIZE": sym["PGDIR_SIZE"], "PERCPU_SIZE": sym["PERCPU_SIZE"],
        "PERCPU_START": sym["PERCPU_START"], "LOCAL_PERCPU_END": sym["LOCAL_PERCPU_END"],
        "VMALLOC_START": sym["VMALLOC_START"], "VMALLOC_END": sym["VMALLOC_END"],
        "configs": len(labels), "broken": tuple(broken), "problems": len(patched.problems)}
    if patched.problems:
        reason = broken_layout_reason(patched) or ""
        first = (f"With {_where(base)}, "
                 + reason.removeprefix("the patched layout is broken: its ") + ".")
    else:
        vm_main, vm_patched = mainline.region("vmalloc").size, patched.region("vmalloc").size
        numbers.update(vmalloc_mainline=vm_main, vmalloc_patched=vm_patched,
                       vmalloc_lost=vm_main - vm_patched)
        areas = 2 * sym["PERCPU_SIZE"]
        align = vm_main - vm_patched - areas  # LOCAL_PERCPU_END aligned down to PGDIR_SIZE
        numbers.update(alignment_lost=align)
        why = (f" ({format_size(areas)} for the areas, {format_size(align)} to aligning them "
               "to PGDIR_SIZE)" if align else "")
        first = (f"With {_where(base)}, patch 02/11 puts a Global and a Local Percpu area of "
                 f"{format_size(sym['PERCPU_SIZE'])} each (2 * PGDIR_SIZE, PGDIR_SIZE "
                 f"{format_size(sym['PGDIR_SIZE'])}) between vmalloc and vmemmap, from "
                 f"{fmt_addr(sym['PERCPU_START'])} to {fmt_addr(sym['LOCAL_PERCPU_END'])}; "
                 f"vmalloc shrinks by {format_size(vm_main - vm_patched)}{why}, from "
                 f"{format_size(vm_main)} to {format_size(vm_patched)}.")
    kasan = "" if base.kasan == "none" else f" with KASAN {base.kasan}"
    if broken:
        second = (f" The areas do not fit in {len(broken)} of the {len(labels)} "
                  f"configurations kernel {base.kernel} allows{kasan}: {_names(broken)}.")
    else:
        second = (f" They fit in all {len(labels)} configurations kernel {base.kernel} "
                  f"allows{kasan}.")
    return Finding(LAYOUT_QUESTION, first + second, "kernel arithmetic", numbers,
                   "the macros of asm/memory.h and pgtable.h with patch 02/11")


def _check_patched(cfg: KernelConfig) -> KernelConfig:
    """cfg with local_percpu; InputError in plain words if its layout cannot be walked."""
    if not local_percpu_supported(cfg.kernel):
        raise InputError(local_percpu_refusal(cfg.kernel), field="kernel")
    patched = cfg.replace(local_percpu=True)
    reason = broken_layout_reason(compute_layout(patched))
    if reason:
        raise InputError(f"{reason}, so there are no per-CPU page tables to walk",
                         field="local_percpu")
    return patched


def _cpu_list(pairs: list[tuple[int, int]]) -> str:
    shown = pairs if len(pairs) <= 4 else [*pairs[:2], *pairs[-1:]]
    parts = [f"CPU {cpu} to PA {pa:#x}" for cpu, pa in shown]
    if len(pairs) > 4:
        parts.insert(2, "...")
    return ", ".join(parts)


def page_tables_finding(cfg: KernelConfig, nr_cpus: int | None = None, *,
                        unit_size: int = DEFAULT_UNIT_SIZE) -> Finding:
    """The first chunk booted on `nr_cpus` CPUs with the patches (`build_first_chunk`):
    where its Local Percpu address leads each CPU, against mainline's tables. Rests on
    patch 01/11's per-CPU roots and on rfc.DEFAULT_PLACEMENT (assumptions)."""
    patched = _check_patched(cfg)
    kpt = build_first_chunk(patched, nr_cpus, unit_size=unit_size)
    mainline = build_first_chunk(patched.replace(local_percpu=False), kpt.nr_cpus,
                                 unit_size=unit_size)
    unit = first_chunk_unit(patched.page_size, unit_size)
    local, _ = first_chunk_va(kpt, unit)
    reached = [(cpu, kpt.translate(cpu, local)) for cpu in range(kpt.nr_cpus)]
    own = all(pa == unit_pa(cpu, unit) for cpu, pa in reached)
    private = sum(kpt.pages_of_cpu(cpu) for cpu in range(kpt.nr_cpus))
    violations = kpt.check_invariants()
    levels = len(kpt.geometry.levels)
    page = patched.page_size
    if own:
        first = (f"On {kpt.nr_cpus} CPUs with {_where(patched)}, the first chunk's Local Percpu "
                 f"address {fmt_addr(local)} leads each CPU to its own {format_size(unit)} "
                 f"unit ({_cpu_list(reached)}) through a {levels}-level walk whose tables "
                 f"below the root are private to that CPU"
                 + ("; every address outside the Local Percpu area translates alike on all "
                    "CPUs." if not violations else
                    f"; {len(violations)} invariant violations elsewhere."))
    else:
        wrong = [cpu for cpu, pa in reached if pa != unit_pa(cpu, unit)]
        first = (f"On {kpt.nr_cpus} CPUs with {_where(patched)}, the Local Percpu address "
                 f"{fmt_addr(local)} does NOT lead CPUs {wrong} to their own unit.")
    second = (f" The tables take {kpt.total_pages:,} pages of {format_size(page)} "
              f"({format_size(kpt.total_pages * page)}) against {mainline.total_pages:,} "
              f"({format_size(mainline.total_pages * page)}) in mainline, {private:,} of them "
              f"private to a CPU.")
    return Finding(PAGE_TABLES_QUESTION, first + second, "assumption",
                   {"nr_cpus": kpt.nr_cpus, "local_va": local, "unit_size": unit,
                    "pa_by_cpu": dict(reached), "own_copy": own, "levels": levels,
                    "patched_pages": kpt.total_pages, "mainline_pages": mainline.total_pages,
                    "private_pages": private, "violations": len(violations)},
                   f"{ROOTS_ASSUMPTION}; {DEFAULT_PLACEMENT.describe()}")


def skip_rule_table(cfg: KernelConfig, nr_cpus: int = 4) -> pd.DataFrame:
    """`scenarios.skip_rule_boundary` for reading: one row per case (which CPU maps two
    Local Percpu pages, ending one page below or exactly at LOCAL_PERCPU_END), the sync,
    and what the mapping CPU and another CPU then reach at the top page."""
    frame = skip_rule_boundary(_check_patched(cfg), nr_cpus)
    rows = []
    for r in frame.itertuples():
        own = ("its own page" if r.own_pa == r.expected_pa else
               "fault: its mapping was overwritten" if r.own_pa is None else
               f"a wrong page {r.own_pa:#x}")
        other = ("nothing (fault), as it should" if r.other_pa is None else
                 f"CPU {r.cpu}'s page {r.other_pa:#x}")
        rows.append({"mapped on": f"CPU {r.cpu}" + (" (swapper_pg_dir)" if r.cpu == 0 else ""),
                     "start": r.start, "end": r.end,
                     "end is LOCAL_PERCPU_END": "yes" if r.end_is_LOCAL_PERCPU_END else "no",
                     "sync": r.sync, "entries copied": r.entries_copied,
                     "mapping CPU reaches": own, f"CPU {r.other_cpu} reaches": other,
                     "violations": r.violations})
    return pd.DataFrame(rows)


def skip_rule_finding(cfg: KernelConfig, nr_cpus: int = 4) -> Finding:
    """Patch 02/11's skip `start >= LOCAL_PERCPU_START && end < LOCAL_PERCPU_END` at its
    upper edge (`scenarios.skip_rule_boundary`): the test is kernel arithmetic, what the
    sync then copies rests on patch 01/11 (assumption)."""
    patched = _check_patched(cfg)
    frame = skip_rule_boundary(patched, nr_cpus)
    end = compute_layout(patched).symbols["LOCAL_PERCPU_END"]
    at = frame[frame["end_is_LOCAL_PERCPU_END"]]
    below = frame[~frame["end_is_LOCAL_PERCPU_END"]]
    cpu0 = at[at["cpu"] == 0].iloc[0]
    cpu1 = at[at["cpu"] == 1].iloc[0]
    copies = int(cpu0["entries_copied"])
    violations = int(at["violations"].sum())
    skipped_below = bool((below["sync"] == "local-area skip").all())
    leak = cpu0["other_pa"]
    lost = cpu1["own_pa"] is None
    answer = (f"A Local Percpu mapping that ends exactly at LOCAL_PERCPU_END "
              f"({fmt_addr(end)}, {_where(patched)}) fails the skip test `end < "
              f"LOCAL_PERCPU_END` and is copied to the other {nr_cpus - 1} CPUs' roots "
              f"({copies} entries): made on CPU 0, CPU {cpu0['other_cpu']} then reaches CPU 0's "
              + (f"page (PA {leak:#x})" if leak is not None else "page")
              + f" and {violations} invariant violations follow; made on CPU 1, "
              + ("swapper_pg_dir's empty entry overwrites CPU 1's own and its walk faults."
                 if lost else "CPU 1 keeps its page.")
              + (" The same mapping one page lower is skipped and harmless."
                 if skipped_below else " One page lower it is NOT skipped either."))
    return Finding("Does the sync skip of patch 02/11 keep every Local Percpu mapping "
                   "private to its CPU?", answer, "assumption",
                   {"LOCAL_PERCPU_END": end, "entries_copied": copies,
                    "violations": violations, "leaked_pa": leak, "cpu1_loses_mapping": lost,
                    "skipped_one_page_lower": skipped_below, "nr_cpus": nr_cpus},
                   f"the skip test is patch 02/11 as written; what the sync copies: "
                   f"{SYNC_ASSUMPTION}")


def pgtable_cost_table(cfg: KernelConfig, nr_cpus: int | None = None, *,
                       unit_size: int = DEFAULT_UNIT_SIZE) -> pd.DataFrame:
    """`scenarios.pgtable_cost` side by side, one row per level and a `total` row: pages
    and bytes in mainline; with the patches pages shared and private to CPUs, bytes, and
    the extra bytes."""
    cost = pgtable_cost(cfg, nr_cpus, unit_size=unit_size)
    main = cost[cost["model"] == "mainline"].reset_index(drop=True)
    patched = cost[cost["model"] == "patched"].reset_index(drop=True)
    frame = pd.DataFrame({
        "level": [f"{lv} (L{hw})" for lv, hw in zip(main["level"], main["hw_level"],
                                                     strict=True)],
        "mainline_pages": main["pages"].astype(int),
        "mainline_bytes": main["bytes"].astype(int),
        "patched_shared_pages": patched["shared_pages"].astype(int),
        "patched_private_pages": patched["private_pages"].astype(int),
        "patched_pages": patched["pages"].astype(int),
        "patched_bytes": patched["bytes"].astype(int),
    })
    frame["extra_bytes"] = frame["patched_bytes"] - frame["mainline_bytes"]
    total = {"level": "total", **{c: int(frame[c].sum()) for c in frame.columns[1:]}}
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


def pgtable_cost_finding(cfg: KernelConfig, nr_cpus: int | None = None, *,
                         unit_size: int = DEFAULT_UNIT_SIZE) -> Finding:
    """What the page tables of the first chunk cost on `nr_cpus` CPUs, mainline against
    the patches, with the share private to CPUs (assumption: patch 01/11's roots)."""
    patched = _check_patched(cfg)
    total = pgtable_cost_table(patched, nr_cpus, unit_size=unit_size).iloc[-1]
    nr = patched.nr_cpus if nr_cpus is None else nr_cpus
    kpt = build_first_chunk(patched, 2, unit_size=unit_size)
    per_cpu = kpt.pages_of_cpu(1)  # a root of its own and the Local Percpu tables
    page = patched.page_size
    unit = first_chunk_unit(page, unit_size)
    numbers = {name: int(total[name]) for name in (
        "mainline_pages", "mainline_bytes", "patched_pages", "patched_bytes", "extra_bytes",
        "patched_private_pages")}
    numbers.update(nr_cpus=nr, pages_per_cpu=per_cpu, unit_size=unit)
    answer = (f"With {nr:,} CPUs ({_where(patched)}, a {format_size(unit)} unit each), the "
              f"first chunk's page tables take {numbers['mainline_pages']:,} pages "
              f"({format_size(numbers['mainline_bytes'])}) in mainline and "
              f"{numbers['patched_pages']:,} pages ({format_size(numbers['patched_bytes'])}) "
              f"with per-CPU page tables: {format_size(numbers['extra_bytes'])} more. "
              f"{numbers['patched_private_pages']:,} of those pages are private to a CPU, "
              f"{per_cpu} per CPU ({format_size(per_cpu * page)}: its root and its Local "
              f"Percpu tables; CPU 0 keeps swapper_pg_dir as its root), so the cost grows "
              f"with the number of CPUs.")
    return Finding(f"What do per-CPU page tables cost with {nr:,} CPUs?", answer,
                   "assumption", numbers,
                   f"{ROOTS_ASSUMPTION}; {DEFAULT_PLACEMENT.describe()}")


def sync_stream_finding(configs: list[KernelConfig], nr_cpus: int, count: int,
                        size: int) -> Finding:
    """`scenarios.sync_stream_table` as a sentence: for each configuration, how many
    arch_sync_kernel_mappings() copies `count` vmalloc areas of `size` bytes cause on
    `nr_cpus` CPUs (assumption: patch 01/11's sync)."""
    table = sync_stream_table([_check_patched(c) for c in configs], nr_cpus, count, size)
    parts = [f"{r.syncs:,} time{'s' if r.syncs != 1 else ''} ({r.entries_copied:,} entries) "
             f"with {r.config}'s {format_size(r.pgdir_size)} root entries"
             for r in table.itertuples()]
    answer = (f"Mapping {count:,} vmalloc areas of {format_size(size)} on {nr_cpus} CPUs "
              f"copies root entries to the other CPUs {_names(parts)}: a sync happens only "
              f"when a new root entry is made, so the smaller PGDIR_SIZE, the more syncs.")
    return Finding("How often must a root entry be copied to every CPU?", answer,
                   "assumption",
                   {"syncs": dict(zip(table["config"], table["syncs"], strict=True)),
                    "entries_copied": dict(zip(table["config"], table["entries_copied"],
                                               strict=True)),
                    "nr_cpus": nr_cpus, "count": count, "size": size},
                   SYNC_ASSUMPTION)


def shared_tlb_answer(cfg: KernelConfig, nr_cpus: int | None = None, *,
                      unit_size: int = DEFAULT_UNIT_SIZE) -> Finding:
    """`scenarios.shared_tlb_finding` at the first chunk's Local Percpu address: CPU 0
    fills a TLB entry, CPU 1 hits it. Kernel mappings are global (nG clear), so only
    CnP=0 keeps the entry private (assumption: patch 01/11 clears CnP)."""
    patched = _check_patched(cfg)
    kpt = build_first_chunk(patched, nr_cpus, unit_size=unit_size)
    local, _ = first_chunk_va(kpt, first_chunk_unit(patched.page_size, unit_size))
    tlb = shared_tlb_finding(kpt, local, filler=0, reader=1)
    return Finding("What if two CPUs shared one TLB entry for a Local Percpu address?",
                   tlb.explanation, "assumption",
                   {"va": local, "reader_pa": tlb.reader_pa, "cached_pa": tlb.cached_pa,
                    "data_owner": tlb.data_owner, "wrong_cpu": tlb.wrong_cpu},
                   f"{ROOTS_ASSUMPTION}; {DEFAULT_PLACEMENT.describe()}")
