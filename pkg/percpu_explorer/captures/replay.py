"""The allocator model against a real kernel in words: `replay_finding` says how many of
the kernel's percpu decisions the model repeats (allocations, frees, chunks created and
destroyed, the first chunk's boot lines, the final percpu_stats) and `replay_table` lists
each check, for a `compare()` result whose capture has a percpu trace.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..findings import Finding
from ..kernel import fmt_addr
from .bundle import CaptureBundle
from .comparison import UNTRACED_NOTE, CaptureComparison

REPLAY_QUESTION = ("Does the allocator model make the same decisions as a real kernel, "
                   "allocation by allocation?")
REPLAY_COLUMNS = ["check", "kernel_count", "model_matched", "matched", "note"]


def kernel_name(comparison: CaptureComparison, bundle: CaptureBundle | None = None) -> str:
    """The captured kernel as people name it: "Debian 6.12.117" for a Debian build
    (its release carries "+deb"), else "Linux 6.12.117"."""
    release = str((bundle.meta if bundle is not None else {}).get("kernel_release", ""))
    distro = "Debian" if "+deb" in release else "Linux"
    return f"{distro} {comparison.config.kernel}"


def _same(real: tuple[int, ...], model: tuple[int, ...]) -> int:
    """How many of the kernel's chunk addresses the model has at the same position."""
    return sum(1 for r, m in zip(real, model, strict=False) if r == m)


def _counts(comparison: CaptureComparison) -> dict[str, Any]:
    replay = comparison.replay
    if replay is None:
        raise ValueError(f"capture {comparison.bundle_name!r} has no percpu trace with the "
                         "kernel's percpu boot lines, so nothing was replayed")
    first = comparison.first_chunk_rows
    stats = comparison.stats_rows
    return {
        "allocs": replay.allocs, "allocs_matched": replay.allocs_matched,
        "frees": replay.frees, "frees_matched": replay.frees_matched,
        "creates": len(replay.creates_real),
        "creates_matched": _same(replay.creates_real, replay.creates_model),
        "creates_model": len(replay.creates_model),
        "destroys": len(replay.destroys_real),
        "destroys_matched": _same(replay.destroys_real, replay.destroys_model),
        "destroys_model": len(replay.destroys_model),
        "first_chunk_items": 0 if first is None else len(first),
        "first_chunk_matched": 0 if first is None else int(first["match"].sum()),
        "stats_fields": None if stats is None else len(stats),
        "stats_matched": None if stats is None else int(stats["match"].sum()),
        "all_matched": replay.all_matched,
        "reordered": len(replay.reordered),
    }


def replay_finding(comparison: CaptureComparison,
                   bundle: CaptureBundle | None = None) -> Finding:
    """The replay of a capture's percpu trace in one or two sentences with its counts
    (basis: real kernel). `bundle` (the capture compared) names the kernel's build."""
    n = _counts(comparison)
    name = kernel_name(comparison, bundle)
    meta = bundle.meta if bundle is not None else {}
    where = ", ".join(str(p) for p in (
        meta.get("kernel_release"),
        f"{meta['cpus_online']} CPUs" if meta.get("cpus_online") else None,
        "under QEMU" if meta.get("source") == "qemu" else None) if p)
    chunks = (f"created {n['creates_matched']} of {n['creates']} and destroyed "
              f"{n['destroys_matched']} of {n['destroys']} chunks at the kernel's base "
              f"addresses, in the same order")
    if (n["creates_model"], n["destroys_model"]) != (n["creates"], n["destroys"]):
        chunks += (f" (the model created {n['creates_model']} and destroyed "
                   f"{n['destroys_model']})")
    answer = (f"Replaying the percpu trace of {name}" + (f" ({where})" if where else "")
              + f", the model put {n['allocs_matched']} of {n['allocs']} allocations in the "
              f"kernel's chunk at the kernel's offset, matched {n['frees_matched']} of "
              f"{n['frees']} frees, and {chunks}.")
    if n["reordered"]:
        answer += (f" {n['reordered']} allocation(s) were replayed ahead of events of other "
                   "CPUs the trace lists first: the kernel traces an allocation after "
                   "releasing pcpu_alloc_mutex.")
    answer += _first_difference(comparison, n)
    if n["first_chunk_items"]:
        answer += (f" Its first chunk agrees with the kernel log in {n['first_chunk_matched']} "
                   f"of {n['first_chunk_items']} facts and boot lines")
        if n["stats_fields"] is not None:
            other = n["stats_fields"] - n["stats_matched"]
            answer += (f"; its final percpu_stats in {n['stats_matched']} of "
                       f"{n['stats_fields']} fields"
                       + (f", the other {other} counting allocations the trace does not show"
                          if other else ""))
        answer += "."
    detail = f"capture {comparison.bundle_name}"
    if meta.get("cpu"):
        detail += f", a {meta['cpu']} CPU"
    return Finding(REPLAY_QUESTION, answer, "real kernel", {**n, "kernel": name},
                   detail=detail)


def _first_difference(comparison: CaptureComparison, n: dict[str, Any]) -> str:
    """Where the replay first differs from the kernel, when an allocation or free did."""
    replay = comparison.replay
    d = replay.first_disagreement if replay is not None else None
    if d is None or (n["allocs_matched"], n["frees_matched"]) == (n["allocs"], n["frees"]):
        return ""
    if d.get("event") != "percpu_alloc_percpu":
        return f" The first event that differs is trace line {d['line']} ({d.get('event')})."
    model_off, model_base = d.get("model_off"), d.get("model_base")
    if model_off is None or pd.isna(model_off):
        model = "the model found no place for it"
    else:
        model = f"the model at offset {int(model_off)}"
        if model_base is not None and not pd.isna(model_base) and \
                int(model_base) != int(d["base_addr"]):
            model += f" of chunk {fmt_addr(int(model_base))}"
    return (f" The first allocation that differs is trace line {d['line']} (CPU {d['cpu']}, "
            f"{d['size']} bytes): the kernel put it at offset {d['off']} of chunk "
            f"{fmt_addr(int(d['base_addr']))}, {model}.")


def _stats_place(chunk: Any) -> str:
    """A percpu_stats row's place: "global", or "chunk 1 (First Chunk)"."""
    if chunk is None or pd.isna(chunk):
        return "global"
    index, _, label = str(chunk).partition(" ")
    return f"chunk {index}" + (f" ({label})" if label else "")


def replay_table(comparison: CaptureComparison) -> pd.DataFrame:
    """Each check of the replay as a row (columns REPLAY_COLUMNS): what the kernel did
    (kernel_count), how many of those the model repeated (model_matched), whether all
    did, and a note (the chunk addresses, why percpu_stats fields differ); then the
    replay's assumptions, one row each."""
    n = _counts(comparison)
    replay = comparison.replay
    assert replay is not None
    rows: list[dict[str, Any]] = []

    def add(check: str, total: int | None, matched: int | None, note: str = "") -> None:
        rows.append({"check": check, "kernel_count": total, "model_matched": matched,
                     "matched": None if total is None else matched == total, "note": note})

    add("allocations in the same chunk at the same offset", n["allocs"], n["allocs_matched"])
    add("frees of the same area", n["frees"], n["frees_matched"])
    add("chunks created at the same base address", n["creates"], n["creates_matched"],
        "kernel: " + ", ".join(fmt_addr(a) for a in replay.creates_real))
    add("chunks destroyed at the same base address", n["destroys"], n["destroys_matched"],
        "kernel: " + ", ".join(fmt_addr(a) for a in replay.destroys_real))
    lags = replay.chunk_event_lags
    add("chunk events after the request that caused them", len(lags),
        sum(1 for lag in lags if lag >= 0),
        "trace events between the model's balance work and the kernel's worker logging "
        "each: " + ", ".join(str(lag) for lag in lags) if lags else "")
    if n["first_chunk_items"]:
        add("first chunk: sizes and boot lines of the kernel log", n["first_chunk_items"],
            n["first_chunk_matched"])
    if n["stats_fields"] is not None:
        stats = comparison.stats_rows
        assert stats is not None
        differ = [f"{_stats_place(r.chunk)} {r.key}" for r in stats[~stats["match"]].itertuples()]
        add("final percpu_stats fields", n["stats_fields"], n["stats_matched"],
            f"differ: {', '.join(differ)}; each {UNTRACED_NOTE}" if differ else "")
    for assumption in replay.assumptions:
        add("the replay assumes", None, None, assumption)
    frame = pd.DataFrame(rows, columns=REPLAY_COLUMNS)
    for col in ("kernel_count", "model_matched"):
        frame[col] = pd.array(frame[col], dtype="Int64")
    frame["matched"] = pd.array(frame["matched"], dtype="boolean")
    return frame
