"""Boots that failed, held against the model's problem list: the kernel of a layout the
model calls broken (RFC patch 02/11 compiled into Debian's 4K/52 configuration), booted
under QEMU with `capture --keep-failed-boot`, leaves a bundle with its console only
(`qemu.failed_boot_bundle`). `boot_evidence` reads what the kernel printed and sets it
beside `compute_layout`'s problems for the same configuration; `failed_boot_finding`
says it in a sentence, `failed_boot_table` row by row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..findings import Finding
from ..kernel import KernelConfig, Layout, compute_layout, fmt_addr, u64
from ..paths import CAPTURES_DIR
from .bundle import CaptureBundle, derive_config, load_bundle
from .parsers import parse_dmesg

FAILED_BOOT_QUESTION = ("What does a real kernel do with the patched layout the model calls "
                        "broken?")
# QEMU's CPU models and the VA size a 52-bit kernel runs with on them: "max" has
# FEAT_LPA2 and FEAT_LVA (52 bits), "cortex-a72" neither (48 bits; arm64's
# __cpu_secondary_check52bitva / the early LPA2 check falls back).
VA_BITS_OF_CPU = {"max": 52, "cortex-a72": 48}

# mm/vmalloc.c, alloc_vmap_area() when no free range fits (v6.12's wording): the range
# printed is the caller's [vstart, vend), for vmalloc() and ioremap() VMALLOC_START and
# VMALLOC_END as the running kernel computed them.
_VMAP_FAIL = re.compile(r"vmalloc_node_range for size (\d+) failed: Address range restricted "
                        r"to (0x[0-9a-f]+) - (0x[0-9a-f]+)")
_FRAME = re.compile(r"^\s*(\w[\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+")


def failed_boots(folder: Path = CAPTURES_DIR) -> tuple[Path, ...]:
    """The bundles in `folder` whose boot failed (meta `boot_failed`)."""
    if not folder.is_dir():
        return ()
    return tuple(p for p in sorted(folder.iterdir())
                 if (p / "meta.json").is_file() and load_bundle(p).meta.get("boot_failed"))


def console_lines(bundle: CaptureBundle) -> list[tuple[float | None, str]]:
    """The console of a failed boot as (seconds, message) per line (`parse_dmesg`)."""
    log = parse_dmesg(bundle.text("dmesg"))
    return [(None if pd.isna(t) else float(t), str(m))
            for t, m in zip(log["time"], log["message"], strict=True)]


def failed_boot_config(bundle: CaptureBundle) -> KernelConfig:
    """The configuration that booted: the build's config facts, `vabits_actual` from the
    QEMU CPU model (the failed kernel never wrote VMCOREINFO), patch 02/11 when the
    kernel had it."""
    cfg = derive_config(bundle)
    cpu = str(bundle.meta.get("cpu", "")).split(",")[0]
    if cfg.va_bits == 52 and cpu in VA_BITS_OF_CPU:
        cfg = cfg.replace(vabits_actual=VA_BITS_OF_CPU[cpu])
    return cfg.replace(local_percpu=bool(bundle.meta.get("patched")))


@dataclass(frozen=True)
class BootEvidence:
    """A failed boot beside the model: `layout` is the model's for the configuration
    that booted (its `problems` the list), `how` the kind of failure (panic, oops, bug,
    warning, hang), `line` the kernel's line that says it and `seconds` its console
    time, `vmap_failures` the sizes of the vmalloc allocations that failed in order,
    `vmap_ranges` the distinct [start, end) ranges those messages name, `call_trace` the
    functions of the first call trace after the failure line, and `last_lines` the
    console's last kernel messages."""

    name: str
    config: KernelConfig
    layout: Layout
    how: str
    line: str | None
    seconds: float | None
    vmap_failures: tuple[int, ...]
    vmap_ranges: tuple[tuple[int, int], ...]
    first_vmap_failure: str | None
    call_trace: tuple[str, ...]
    reached_init: bool
    cpus_online: int | None
    boot_seconds: int | None
    last_lines: tuple[str, ...]
    kaslr: bool = True
    oops_pc: str | None = None
    first_abort: dict[str, Any] | None = None
    registers: dict[str, int] | None = None


def boot_evidence(path: Path | CaptureBundle) -> BootEvidence:
    """What the failed boot printed and what the model says of its configuration."""
    bundle = path if isinstance(path, CaptureBundle) else load_bundle(path)
    if not bundle.meta.get("boot_failed"):
        raise ValueError(f"capture {bundle.name!r} booted: compare it with `compare`")
    cfg = failed_boot_config(bundle)
    facts = bundle.meta.get("boot_failure") or {}
    how = str(facts.get("how", "hang"))
    line = facts.get(how)
    lines = console_lines(bundle)
    vmap = [found for _t, m in lines if (found := _VMAP_FAIL.search(m))]
    ranges = tuple(dict.fromkeys((int(f.group(2), 16), int(f.group(3), 16)) for f in vmap))
    trace: list[str] = []
    if line:
        start = next((i for i, (_t, m) in enumerate(lines) if line in m), None)
        if start is not None:
            for _t, m in lines[start:]:
                frame = _FRAME.match(m)
                if frame:
                    trace.append(frame.group(1))
                elif trace:
                    break
    messages = [m for t, m in lines if t is not None]
    oops_pc = None
    if facts.get("oops"):
        after = [m for _t, m in lines[next((i for i, (_t, m) in enumerate(lines)
                                             if facts["oops"] in m), 0):]]
        oops_pc = next((m.split(":", 1)[1].strip() for m in after if m.startswith("pc :")),
                       None)
    abort = facts.get("first_abort")
    if how == "exception loop" and abort:
        line = (f"{abort['exception']} at {fmt_addr(abort['far'])} (ELR {abort['elr']:#x}), "
                f"then endless aborts at the vector {abort['vector']:#x}")
    return BootEvidence(
        name=bundle.name, config=cfg, layout=compute_layout(cfg), how=how,
        line=str(line) if line else None,
        seconds=facts.get(f"{how}_seconds"),
        vmap_failures=tuple(int(f.group(1)) for f in vmap), vmap_ranges=ranges,
        first_vmap_failure=vmap[0].group(0) if vmap else None,
        call_trace=tuple(trace), reached_init=bool(facts.get("reached_init")),
        cpus_online=facts.get("cpus_online"), boot_seconds=bundle.meta.get("boot_seconds"),
        last_lines=tuple(messages[-12:]), kaslr=bool(bundle.meta.get("kaslr", True)),
        first_abort=abort, registers=facts.get("registers"), oops_pc=oops_pc)


# arch/arm64/kernel/pi/kaslr_early.c, kaslr_early_init(): the image goes in the middle half
# of [KIMAGE_VADDR, VMALLOC_END); arch/arm64/kernel/pi/map_kernel.c keeps the offset
# MIN_KIMG_ALIGN (2M) aligned.
MIN_KIMG_ALIGN = 2 << 20


def kaslr_range(layout: Layout) -> tuple[int, int]:
    """[lowest, highest) KASLR offset of the kernel image that kaslr_early_init() can
    choose: range = (VMALLOC_END - KIMAGE_VADDR) / 2 in unsigned 64-bit arithmetic, the
    offset range / 2 + range * seed / 2^64."""
    sym = layout.symbols
    span = u64(sym["VMALLOC_END"] - sym["KIMAGE_VADDR"]) // 2
    return span // 2, span // 2 + span


def failed_boot_finding(path: Path | CaptureBundle) -> Finding:
    """The model's problem list for the configuration and what the kernel did, in two
    sentences (basis: real kernel)."""
    ev = boot_evidence(path)
    sym = ev.layout.symbols
    codes = ", ".join(sorted({f.code for f in ev.layout.problems}))
    cfg = ev.config
    model = (f"For {cfg.label()} with patch 02/11 the model computes VMALLOC_END "
             f"{fmt_addr(sym['VMALLOC_END'])}, below VMALLOC_START "
             f"{fmt_addr(sym['VMALLOC_START'])} ({len(ev.layout.problems)} problems: "
             f"{codes}).")
    kaslr = "with KASLR" if ev.kaslr else "with nokaslr"
    if ev.how == "exception loop" and ev.first_abort and ev.registers:
        low, high = kaslr_range(ev.layout)
        real = (f" The real kernel, built with the patch and booted {kaslr}, printed nothing: "
                f"kaslr_early_init() takes the image offset from (VMALLOC_END - KIMAGE_VADDR) "
                f"/ 2, which wraps, so it chose {ev.registers.get('X00', 0):#x} (in "
                f"[{low:#x}, {high:#x})), and the first relocation write faulted at "
                f"{fmt_addr(ev.first_abort['far'])} before the kernel had exception vectors: "
                f"{ev.line}")
    elif ev.how == "hang":
        real = f" The real kernel, booted {kaslr}, did not finish booting"
    else:
        real = (f" The real kernel, built with the patch and booted {kaslr}, hit a {ev.how}: "
                f"\"{ev.line}\"")
        if ev.oops_pc:
            real += f" (after an oops at {ev.oops_pc})"
        if ev.vmap_failures:
            start, end = ev.vmap_ranges[0]
            same = (start, end) == (sym["VMALLOC_START"], sym["VMALLOC_END"])
            real += (f", {len(ev.vmap_failures)} vmalloc allocations having failed in "
                     f"[{start:#x}, {end:#x})"
                     + (", the model's VMALLOC_START and VMALLOC_END" if same else ""))
    real += "." if ev.reached_init else "; it never reached init."
    numbers: dict[str, Any] = {
        "VMALLOC_START": sym["VMALLOC_START"], "VMALLOC_END": sym["VMALLOC_END"],
        "problems": len(ev.layout.problems), "how": ev.how, "line": ev.line,
        "seconds": ev.seconds, "vmap_failures": len(ev.vmap_failures),
        "reached_init": ev.reached_init, "kaslr": ev.kaslr}
    return Finding(FAILED_BOOT_QUESTION, model + real, "real kernel", numbers,
                   detail=f"capture {ev.name}, a {cfg.label()} kernel under QEMU")


def failed_boot_table(path: Path | CaptureBundle) -> pd.DataFrame:
    """The model's problems, one row each, with what the real kernel showed of it."""
    ev = boot_evidence(path)
    rows = []
    for f in ev.layout.problems:
        if f.code == "vmalloc-empty":
            if ev.vmap_failures:
                real = (f"{len(ev.vmap_failures)} vmalloc allocation(s) failed, the first: "
                        f"\"{ev.first_vmap_failure}\"")
            elif ev.how == "exception loop" and ev.registers:
                low, high = kaslr_range(ev.layout)
                real = (f"kaslr_early_init()'s range wraps: image offset "
                        f"{ev.registers.get('X00', 0):#x} in [{low:#x}, {high:#x})")
            else:
                real = "no vmalloc failure printed"
        else:
            real = ("not exercised: patch 02/11 alone maps nothing in the percpu areas "
                    "(patches 03-11 would)")
        rows.append({"problem": f.code, "model": f.message, "real kernel": real})
    end = f"{ev.how}: {ev.line}" if ev.line else "no failure line; the boot timed out"
    rows.append({"problem": "boot", "model": f"{len(ev.layout.problems)} problems",
                 "real kernel": end + (f" at {ev.seconds:.6f}s" if ev.seconds else "")})
    return pd.DataFrame(rows, columns=["problem", "model", "real kernel"])
