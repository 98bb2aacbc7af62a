"""Claims held against real kernels ("real kernel" rows): the capture bundles shipped as
package data (`data/captures`), one per distinct configuration, give the first chunk a
real kernel sized for its possible CPUs (claim 1), the offsets it handed out (claim 3)
and a real layout with what the patch makes of it (claim 6)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ..captures import (
    boot_evidence,
    compare,
    derive_config,
    failed_boot_config,
    failed_boots,
    load_bundle,
)
from ..kernel import format_size
from ..paths import CAPTURES_DIR
from .common import CLAIM_BY_ID, NO_CAPTURE, ClaimResult


def default_captures_dir() -> Path:
    """The capture bundles shipped as package data (`data/captures`)."""
    return CAPTURES_DIR


@functools.lru_cache(maxsize=32)
def compare_capture(path: Path) -> Any:
    """captures.compare of one bundle, once per path. Claims 1, 3 and 6 each go through
    the picked bundles in turn: the cache holds them all (with 9 picked, a cache of 8
    kept none of them for the next claim, and every bundle was compared three times)."""
    return compare(load_bundle(path))


def pick_captures(folder: Path) -> tuple[Path, ...]:
    """One bundle per distinct configuration (the first by name): both Debian 4K/52 boots,
    on 52-bit and on 48-bit hardware, and each kernel built per variant, a kernel with
    patch 02/11 compiled in counting apart from the same configuration without it. A boot
    that failed (meta "boot_failed") is not a capture: `failed_boots` finds those."""
    chosen: dict[str, Path] = {}
    for path in sorted(p for p in folder.iterdir() if (p / "meta.json").is_file()):
        try:
            bundle = load_bundle(path)
            if bundle.meta.get("boot_failed"):
                continue
            label = derive_config(bundle).label()
        except ValueError:
            continue
        chosen.setdefault(label + (" patched" if bundle.meta.get("patched") else ""), path)
    return tuple(chosen.values())


def kernel_words(path: Path) -> str:
    """How a capture's kernel was configured, for the evidence text."""
    meta = load_bundle(path).meta
    if not meta.get("variant"):
        return "Debian's arm64 configuration"
    return ("linux-source-6.12 with Debian's configuration trimmed"
            + (", RFC patch 02/11 compiled in: its ptdump shows the patched areas"
               if meta.get("patched") else ""))


def no_capture(claim_id: str, folder: Path | None) -> ClaimResult:
    """The row standing for a claim's capture rows when no bundle is there."""
    where = f" ({folder} is absent or holds no bundle)" if folder is not None else ""
    return ClaimResult(CLAIM_BY_ID[claim_id], "capture", "not checked",
                       f"{NO_CAPTURE}{where}: the rows above rest on the models alone, "
                       "not checked against a real kernel here.", "captures", "real kernel")


def claim_offsets_capture(path: Path) -> ClaimResult:
    """The offsets a real kernel handed out (its percpu trace), against its vmalloc size."""
    claim = CLAIM_BY_ID["3"]
    comp = compare_capture(path)
    rows = comp.replay.rows if comp.replay is not None else None
    if rows is None or comp.first_chunk is None:
        return ClaimResult(claim, f"capture {path.name}", "not checked",
                           f"{NO_CAPTURE}: the capture has no percpu trace", f"captures {path}",
                           "real kernel")
    allocs = rows[rows["event"] == "percpu_alloc_percpu"]
    addrs = [int(b) + int(o) for b, o in zip(allocs["real_base"], allocs["real_off"],
                                             strict=True)]
    spread = max(addrs) - min(addrs)
    sym = comp.layout.symbols
    vm = sym["VMALLOC_END"] - sym["VMALLOC_START"]
    matched = comp.replay.all_matched
    text = (f"Real {comp.config.label()} kernel {comp.config.kernel}: its {len(addrs)} traced "
            f"allocations span {format_size(spread)} ({spread:#x}) from the first chunk in the "
            f"linear map to chunks at the top of vmalloc, "
            f"{'more' if spread >= vm else 'less'} than vmalloc's {format_size(vm)}; the "
            f"allocator model {'agrees on every' if matched else 'DISAGREES on some'} "
            f"allocation, free and chunk.")
    return ClaimResult(claim, f"{comp.config.label()} (capture {path.name})",
                       "holds" if spread >= vm and matched else "holds with caveat", text,
                       f"captures.compare(data/captures/{path.name}).replay", "real kernel",
                       numbers={"real_offset_spread": spread, "vmalloc_size": vm,
                                "allocations": len(addrs)})


def patched_boots(path: Path) -> tuple[Path, ...]:
    """The failed boots next to capture `path` (in the same folder) of the same
    configuration with patch 02/11 compiled in."""
    label = derive_config(load_bundle(path)).label()
    out = []
    for boot in failed_boots(path.parent):
        bundle = load_bundle(boot)
        if (bundle.meta.get("patched")
                and failed_boot_config(bundle).replace(local_percpu=False).label() == label):
            out.append(boot)
    return tuple(out)


def _boot_words(boot: Path) -> str:
    """What one kernel built with the patch did, for the evidence text."""
    ev = boot_evidence(boot)
    text = f"booted {'with KASLR' if ev.kaslr else 'with nokaslr'} ({boot.name}), it "
    if ev.how == "exception loop" and ev.first_abort:
        text += (f"printed nothing: its KASLR offset, taken from the wrapped VMALLOC_END - "
                 f"KIMAGE_VADDR, put the first relocation write at "
                 f"{ev.first_abort['far']:#x}, a data abort before any exception vector")
    elif ev.line:
        text += f"hit a {ev.how}: \"{ev.line}\""
        if ev.vmap_failures:
            start, end = ev.vmap_ranges[0]
            text += (f" after {len(ev.vmap_failures)} vmalloc allocations failed in "
                     f"[{start:#x}, {end:#x})")
    else:
        text += "did not finish booting"
    return text


def claim_fits_capture(path: Path) -> ClaimResult:
    """A real kernel's layout (checked value by value) and what the patch makes of it;
    where the same configuration was built with the patch and its boots failed
    (`patched_boots`), what that kernel did."""
    claim = CLAIM_BY_ID["6"]
    comp = compare_capture(path)
    agree = f"{comp.agreed}/{len(comp.layout_rows)}"
    if comp.rfc_layout is None:
        text = f"the patch cannot apply: {comp.rfc_error}"
        verdict = "cannot hold"
    else:
        codes = ", ".join(sorted({f.code for f in comp.rfc_layout.problems}))
        text = ("the patched layout of the same configuration is "
                + (f"broken ({codes})" if codes else "sane"))
        verdict = "cannot hold" if codes else "holds"
    evidence = (f"Real {comp.config.label()} kernel {comp.config.kernel} "
                f"({kernel_words(path)}): the model matches {agree} of its layout values; "
                f"{text}.")
    numbers: dict[str, Any] = {"layout_values_agreed": comp.agreed,
                               "layout_values": len(comp.layout_rows)}
    source = f"captures.compare(data/captures/{path.name})"
    boots = patched_boots(path) if comp.rfc_layout is not None else ()
    if boots:
        evidence += (" Built with patch 02/11 and " + "; ".join(_boot_words(b) for b in boots)
                     + ".")
        numbers["patched_boots"] = {b.name: boot_evidence(b).how for b in boots}
        source += "; " + ", ".join(f"captures.boot_evidence(data/captures/{b.name})"
                                   for b in boots)
    return ClaimResult(claim, f"{comp.config.label()} (capture {path.name})", verdict, evidence,
                       source, "real kernel", numbers=numbers)


def claim_area_size_capture(path: Path) -> ClaimResult:
    """A real kernel's first chunk: one unit per possible CPU, not per CONFIG_NR_CPUS
    (its `percpu:` / `pcpu-alloc:` boot lines, matched line by line by the model), and
    whether the patched areas exist in its configuration at all."""
    claim = CLAIM_BY_ID["1"]
    comp = compare_capture(path)
    info = comp.first_chunk
    rows = comp.first_chunk_rows
    if info is None or rows is None or not len(rows):
        return ClaimResult(claim, f"capture {path.name}", "not checked",
                           f"{NO_CAPTURE}: the capture has no percpu boot lines",
                           f"captures {path}", "real kernel")
    nr_cpus = comp.config.nr_cpus
    matched = int(rows["match"].sum())
    text = (f"Real {comp.config.label()} kernel {comp.config.kernel} built with "
            f"CONFIG_NR_CPUS={nr_cpus}: its boot lines show a first chunk of {info.nr_units} "
            f"units of {format_size(info.unit_size or 0)}, one per possible CPU (the model "
            f"matches {matched}/{len(rows)} of the lines and fields). ")
    if comp.rfc_layout is None or comp.rfc_layout.problems:
        verdict = "cannot hold"
        text += "The patched layout does not fit this configuration, so there is no area."
    else:
        verdict = "holds"
        text += "The patched area holds this first chunk."
    return ClaimResult(claim, f"{comp.config.label()} (capture {path.name})", verdict, text,
                       f"captures.compare(data/captures/{path.name}).first_chunk_rows",
                       "real kernel",
                       numbers={"nr_units": info.nr_units, "CONFIG_NR_CPUS": nr_cpus,
                                "unit_size": info.unit_size, "lines_matched": matched,
                                "lines": len(rows)})
