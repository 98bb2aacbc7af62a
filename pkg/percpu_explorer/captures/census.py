"""A census of the this_cpu sites of a real arm64 kernel: how often each one ran, per
workload, counted exactly by a QEMU plugin (`census_run`), and what each site does.

A *site* is a kernel instruction that reads the CPU's per-CPU offset: `mrs Xn,
tpidr_el1` (`tpidr_el2` on a VHE kernel, patched at boot at the same address), or a
`bl` into one of the compiler's out-of-line copies of that read (`__kern_my_cpu_offset`:
`mrs; ret`), which credits the caller. Each this_cpu_*(), __this_cpu_*() or raw_cpu_*()
op, and each this_cpu_ptr()/smp_processor_id(), starts with one such read (several
raw ops in a row may share one: `thiscpu.offset_reads`).

A census *bundle* is a folder:

    meta.json        kernel package and release, QEMU version, CPU, options, phases
                     with the kernel's and user's instruction totals, timings
    sites.csv.gz     one row per site: address, kind, instruction word, one count
                     column per phase
    words.csv.gz     the kernel's instruction words around the sites (as translated:
                     after boot-time patching), for classifying them
    symbols.csv.gz   the kallsyms entries the sites fall in (and the percpu symbols
                     the tests use), with each function's size
    counters.csv.gz  the kernel's own counters (/proc/vmstat, /proc/stat) at each mark

Phases: "boot" runs from power-on to the first mark; each workload from the mark
before it to the mark after it (the marks themselves, a fork+exec of a tiny program
that reads two /proc files, are in every phase: the "idle" workload measures them).

The plugin cannot read registers or memory, so `classify_site` reads the instructions
after each site (following unconditional branches) and names the access: op kind,
size, atomic or plain. When the access lies past a conditional branch or a call, or the
offset only forms a pointer (this_cpu_ptr(), per_cpu_ptr()), the site is "pointer".
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..paths import DATA_DIR
from ..thiscpu import validate_workload

CENSUS_DIR = DATA_DIR / "census"
# The census the reviewer's answer and the explorers use: Debian's 6.12.117, -cpu max
# (LSE atomics), 2 CPUs.
DEFAULT_CENSUS = "debian-6.12.117-max-smp2"
CENSUS_CPUS = ("max", "cortex-a57")
# HINT #0x7e: an unallocated hint (ARM ARM C6.2.126: "executes as a NOP"), the marker
# word the plugin snapshots its counters at when user code executes it.
MARKER_WORD = 0xD503201F | 0x7E << 5


@dataclass(frozen=True)
class Workload:
    """A guest workload: what it does (in words) and its busybox shell lines."""

    description: str
    script: tuple[str, ...]


_THP = "thp=/sys/kernel/mm/transparent_hugepage/enabled"


def _loop(n: int, body: str) -> tuple[str, ...]:
    return (f"i=0; while [ $i -lt {n} ]; do {body}; i=$((i+1)); done",)


WORKLOADS: dict[str, Workload] = {
    "idle": Workload("nothing between two marks: what a mark itself costs", (":",)),
    "fork_exec": Workload("200 fork+exec+exit+wait of a static 3-instruction program",
                          _loop(200, "census-exit")),
    "pipe": Workload("20000 one-byte writes into a pipe, read by cat (dd bs=1 | cat)",
                     ("dd if=/dev/zero bs=1 count=20000 2>/dev/null | cat > /dev/null",)),
    "pipe_pingpong": Workload("5000 round trips of one byte between two tasks over two "
                              "pipes (each round wakes each task once)",
                              ("census-pingpong",)),
    "memcg": Workload("create and remove 50 memory cgroups (cgroup2, +memory)",
                      (*_loop(50, "mkdir /sys/fs/cgroup/c$i"),
                       *_loop(50, "rmdir /sys/fs/cgroup/c$i"))),
    "tmpfs": Workload("create and write 200 small files on tmpfs, then unlink them",
                      (*_loop(200, "echo census > /mnt/t/f$i"), "rm -f /mnt/t/f*")),
    "page_faults": Workload("fault in 32 MB of anonymous memory page by page (dd bs=32M "
                            "from /dev/zero: the read clears each new page; transparent huge "
                            "pages off for this workload only)",
                            (f"{_THP}; old=$(sed 's/.*\\[\\(.*\\)\\].*/\\1/' $thp)",
                             "echo never > $thp",
                             "dd if=/dev/zero of=/dev/null bs=32M count=1 2>/dev/null",
                             "echo $old > $thp")),
    "loopback": Workload("send 1 MB over a loopback TCP connection (busybox nc)",
                         ("nc -l -p 5000 > /dev/null &", "sleep 1",
                          "dd if=/dev/zero bs=4096 count=256 2>/dev/null | "
                          "timeout 30 nc 127.0.0.1 5000", "wait")),
}


# --- plugin output and kallsyms ------------------------------------------------------------

def parse_census_output(text: str) -> tuple[list[dict[str, Any]], pd.DataFrame, pd.DataFrame]:
    """The plugin's output file: (snapshots, sites, words).

    snapshots: [{"kernel": n, "user": n, "counts": {addr: cumulative count}}], one per
    marker and a last one at exit. sites: addr, kind, word. words: addr, word."""
    snaps: list[dict[str, Any]] = []
    sites: list[tuple[int, str, int]] = []
    words: dict[int, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        f = line.split()
        if not f:
            continue
        try:
            if f[0] == "c":
                snaps[-1]["counts"][int(f[1], 16)] = int(f[2])
            elif f[0] == "w":
                words[int(f[1], 16)] = int(f[2], 16)
            elif f[0] == "snap":
                snaps.append({"kernel": int(f[2]), "user": int(f[3]), "counts": {}})
            elif f[0] == "site":
                sites.append((int(f[1], 16), f[2], int(f[3], 16)))
            elif f[0] == "end":
                pass
            else:
                raise ValueError(f"unknown record {f[0]!r}")
        except (ValueError, IndexError) as exc:
            raise InputError(f"census output line {number}: {line[:80]!r}: {exc}") from None
    return (snaps, pd.DataFrame(sites, columns=["addr", "kind", "word"]),
            pd.DataFrame(sorted(words.items()), columns=["addr", "word"]))


def parse_kallsyms(text: str) -> pd.DataFrame:
    """/proc/kallsyms: addr, type, name (module symbols dropped), sorted by address."""
    rows = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 3 or len(f) > 3:
            continue
        rows.append((int(f[0], 16), f[1], f[2]))
    frame = pd.DataFrame(rows, columns=["addr", "type", "name"])
    return frame.sort_values("addr", kind="stable").reset_index(drop=True)


def parse_counters(text: str) -> dict[str, int]:
    """/proc/vmstat (name value lines) and /proc/stat (ctxt, processes, intr and softirq
    totals, softirq per vector as softirq_N) as one mapping."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) == 2 and f[1].lstrip("-").isdigit():
            out[f[0]] = int(f[1])
        elif len(f) > 2 and f[0] in ("intr", "softirq"):
            out[f[0]] = int(f[1])
            if f[0] == "softirq":
                for i, value in enumerate(f[2:]):
                    out[f"softirq_{i}"] = int(value)
    return out


# --- the bundle ----------------------------------------------------------------------------

@dataclass(frozen=True)
class CensusBundle:
    """One census: `meta` (see the module docstring), `sites` (addr, kind, word and one
    count column per phase), `words` (addr, word), `symbols` (addr, type, name, size) and
    `counters` (phase, name, value: the kernel's counters at the mark that ends the
    phase)."""

    meta: dict[str, Any]
    sites: pd.DataFrame
    words: pd.DataFrame
    symbols: pd.DataFrame
    counters: pd.DataFrame
    name: str = "census"
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def phases(self) -> list[str]:
        return [p["name"] for p in self.meta["phases"]]

    def __repr__(self) -> str:
        return (f"CensusBundle({self.name!r}, kernel {self.meta.get('kernel_release')}, "
                f"cpu {self.meta.get('cpu')}, {len(self.sites)} sites, phases {self.phases})")

    @classmethod
    def from_run(cls, meta: dict[str, Any], snaps: list[dict[str, Any]], sites: pd.DataFrame,
                 words: pd.DataFrame, kallsyms: pd.DataFrame, counters: Mapping[str, str],
                 plain_counters: Mapping[str, str] | None = None) -> CensusBundle:
        """Assemble a bundle from a run: per-phase counts are differences of the plugin's
        cumulative snapshots (phase k ends at marker k)."""
        names = list(counters)
        phases = []
        columns: dict[str, np.ndarray] = {}
        addrs = sites["addr"].to_numpy()
        previous = {"kernel": 0, "user": 0, "counts": {}}
        for name, snap in zip(names, snaps, strict=False):
            phases.append({"name": name, "kernel_insns": snap["kernel"] - previous["kernel"],
                           "user_insns": snap["user"] - previous["user"]})
            columns[name] = np.array([snap["counts"].get(a, 0) - previous["counts"].get(a, 0)
                                      for a in addrs], dtype=np.int64)
            previous = snap
        frame = sites.copy()
        for name, values in columns.items():
            frame[name] = values
        frame = frame[frame[names].sum(axis=1) > 0].reset_index(drop=True)
        keep = _symbols_for(kallsyms, frame["addr"].to_numpy())
        near = np.zeros(len(words), dtype=bool)
        waddr = words["addr"].to_numpy()
        for a in frame["addr"].to_numpy():
            near |= (waddr >= a - 32) & (waddr <= a + 96)
        # keep the words of branch targets too: any word within a kept function
        for start, size in zip(keep["addr"].tolist(), keep["size"].tolist(), strict=True):
            if size < 4096:
                near |= (waddr >= np.uint64(start)) & (waddr < np.uint64(start + size))
        rows = []
        for name, text in counters.items():
            for key, value in parse_counters(text).items():
                rows.append((name, key, value))
        meta = dict(meta)
        meta["phases"] = phases
        meta["kernel_total_insns"] = snaps[-1]["kernel"] if snaps else 0
        meta["user_total_insns"] = snaps[-1]["user"] if snaps else 0
        if plain_counters is not None:
            meta["plain_marks"] = list(plain_counters)
        return cls(meta, frame, words[near].reset_index(drop=True), keep,
                   pd.DataFrame(rows, columns=["phase", "name", "value"]),
                   name=str(meta.get("name", "census")))


# percpu symbols the checks and classification use (all in .data..percpu)
PERCPU_SYMBOLS = ("__per_cpu_start", "__per_cpu_end", "vm_event_states", "kstat",
                  "cpu_number", "__preempt_count")


def _symbols_for(kallsyms: pd.DataFrame, addrs: np.ndarray) -> pd.DataFrame:
    """The kallsyms rows each address falls in (with size = distance to the next
    symbol), plus PERCPU_SYMBOLS and the out-of-line offset-read copies."""
    ordered = kallsyms.sort_values("addr", kind="stable").reset_index(drop=True)
    starts = ordered["addr"].to_numpy()
    nxt = np.append(starts[1:], starts[-1] + 4)
    text = ordered[ordered["type"].str.lower().isin(["t", "w"])]
    t_starts = text["addr"].to_numpy()
    idx = np.searchsorted(t_starts, addrs, side="right") - 1
    wanted = set(text.index[idx[idx >= 0]])
    wanted |= set(ordered.index[ordered["name"].isin(
        [*PERCPU_SYMBOLS, "__kern_my_cpu_offset", "_text", "_etext"])])
    # every percpu variable, so the accesses' targets can be named
    bounds = ordered[ordered["name"].isin(["__per_cpu_start", "__per_cpu_end"])]["addr"]
    if len(bounds) == 2:
        lo, hi = np.uint64(bounds.min()), np.uint64(bounds.max())
        wanted |= set(ordered.index[(starts >= lo) & (starts <= hi)])
    out = ordered.loc[sorted(wanted)].copy()
    # a function's size: up to the next symbol at a higher address
    pos = np.searchsorted(starts, out["addr"].to_numpy(), side="right")
    ends = np.where(pos < len(starts), starts[np.minimum(pos, len(starts) - 1)], nxt[-1])
    out["size"] = (ends - out["addr"].to_numpy()).astype(np.int64)
    return out.reset_index(drop=True)


def _csv_gz(frame: pd.DataFrame, path: Path, hex_columns: tuple[str, ...] = ()) -> None:
    shown = frame.copy()
    for column in hex_columns:
        shown[column] = [f"{int(v):x}" for v in shown[column]]
    path.write_bytes(gzip.compress(shown.to_csv(index=False).encode(), 9, mtime=0))


def _read_csv_gz(path: Path, columns: tuple[str, ...], hex_columns: tuple[str, ...] = ()
                 ) -> pd.DataFrame:
    """A gzip'd CSV of the bundle with at least `columns`; InputError naming the file."""
    if not path.is_file():
        raise InputError(f"census bundle file {path} is missing")
    try:
        frame = pd.read_csv(io.BytesIO(gzip.decompress(path.read_bytes())),
                            dtype={c: str for c in hex_columns}, keep_default_na=False)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"no column(s) {', '.join(missing)}")
        for column in hex_columns:
            frame[column] = [int(v, 16) for v in frame[column].tolist()]
    except (OSError, EOFError, ValueError, TypeError, pd.errors.ParserError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"census bundle file {path}: {text}") from None
    return frame


def save_census(bundle: CensusBundle, folder: str | Path) -> Path:
    """Write the bundle's five files (see the module docstring)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").write_text(json.dumps(bundle.meta, indent=1, sort_keys=True) + "\n")
    _csv_gz(bundle.sites, folder / "sites.csv.gz", ("addr", "word"))
    _csv_gz(bundle.words, folder / "words.csv.gz", ("addr", "word"))
    _csv_gz(bundle.symbols, folder / "symbols.csv.gz", ("addr",))
    _csv_gz(bundle.counters, folder / "counters.csv.gz")
    return folder


def census_path(name: str | Path) -> Path:
    """A bundle folder: a path, or the name of a shipped bundle in data/census/."""
    path = Path(name)
    if path.is_dir():
        return path
    shipped = CENSUS_DIR / str(name)
    if shipped.is_dir():
        return shipped
    choices = sorted(p.name for p in CENSUS_DIR.iterdir()) if CENSUS_DIR.is_dir() else []
    raise InputError(f"census bundle {str(name)!r} is neither a folder nor a shipped bundle; "
                     f"choose a folder or one of {', '.join(choices) or '(none shipped)'}",
                     field="census")


def shipped_census() -> list[str]:
    """Names of the census bundles in data/census/."""
    if not CENSUS_DIR.is_dir():
        return []
    return sorted(p.name for p in CENSUS_DIR.iterdir() if (p / "meta.json").is_file())


def census_phases(name: str | Path = DEFAULT_CENSUS) -> list[str]:
    """The phases of a census (boot, then each workload), from its meta.json alone."""
    path = census_path(name) / "meta.json"
    try:
        return [p["name"] for p in json.loads(path.read_text())["phases"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"census {name}: cannot read its phases from {path} ({exc})"
                         ) from None


def load_census(name: str | Path) -> CensusBundle:
    """Read a census bundle (a folder, or the name of a shipped one)."""
    folder = census_path(name)
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        raise InputError(f"census bundle {folder} has no meta.json", field="census")
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"census bundle {folder}/meta.json is not JSON: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                         ) from None
    phases = meta.get("phases") if isinstance(meta, dict) else None
    if not (isinstance(phases, list) and phases and all(
            isinstance(p, dict) and isinstance(p.get("name"), str)
            and isinstance(p.get("kernel_insns"), int) and isinstance(p.get("user_insns"), int)
            for p in phases)):
        raise InputError(f"census bundle {folder}/meta.json has no list of phases with name, "
                         "kernel_insns and user_insns")
    names = [p["name"] for p in phases]
    sites = _read_csv_gz(folder / "sites.csv.gz", ("addr", "kind", "word", *names),
                         ("addr", "word"))
    return CensusBundle(meta, sites,
                        _read_csv_gz(folder / "words.csv.gz", ("addr", "word"), ("addr", "word")),
                        _read_csv_gz(folder / "symbols.csv.gz", ("addr", "type", "name", "size"),
                                     ("addr",)),
                        _read_csv_gz(folder / "counters.csv.gz", ("phase", "name", "value")),
                        name=folder.name)


# --- classification ------------------------------------------------------------------------

OP_KINDS = ("read", "write", "add", "add_return", "and", "or", "xchg", "cmpxchg",
            "cmpxchg128", "pointer")
ACCESS_KINDS = ("plain", "lse", "llsc", "none")
_STEPS = 24  # instructions followed after a site


def _bits(word: int, hi: int, lo: int) -> int:
    return (word >> lo) & ((1 << (hi - lo + 1)) - 1)


def _sext(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) else value


@dataclass(frozen=True)
class SiteClass:
    """What a site's offset read feeds: op kind (`OP_KINDS`), size in bytes (0 when
    unknown), access (`ACCESS_KINDS`: plain load/store, an LSE atomic, an LL/SC loop),
    the words from the site to the access (hex, branches followed), the percpu address
    the access reaches when its base is a link-time constant (0 otherwise), and why
    the walk stopped when it found no access."""

    op: str
    size: int
    access: str
    sequence: str
    target: int = 0
    stop: str = ""

    @property
    def flavour(self) -> str:
        """Atomic RMW: this_cpu_*() (arm64 makes those atomic); plain RMW: __this_cpu_*()
        or raw_cpu_*(); a plain read or write can be either ("any")."""
        if self.access in ("lse", "llsc"):
            return "this_cpu"
        if self.op in ("add", "and", "or") and self.access == "plain":
            return "__this_cpu"
        return "any"


def _is_cond_branch(word: int) -> bool:
    return ((word & 0xFF000010) == 0x54000000 or (word & 0x7E000000) == 0x34000000
            or (word & 0x7E000000) == 0x36000000)


def classify_site(addr: int, kind: str, words: Mapping[int, int]) -> SiteClass:
    """Follow the instructions after a site (unconditional `b` followed) and name the
    access the per-CPU offset feeds. Registers are tracked symbolically: OFF (the offset),
    PTR (an address formed with it, with its constant base when adrp/add built one)."""
    regs: dict[int, tuple[str, int]] = {}
    consts: dict[int, int] = {}
    # constants built before the site (adrp/add of the percpu symbol often precede it)
    for a in range(addr - 32, addr, 4):
        _const_step(a, words.get(a), consts)
    pc = addr
    seq: list[int] = []
    if kind == "bl":
        regs[0] = ("off", 0)
    else:
        regs[words.get(addr, 0) & 31] = ("off", 0)
    pc += 4
    pending_load: tuple[int, int, int] | None = None  # (dest reg, size, base key)
    modified = False
    for _ in range(_STEPS):
        word = words.get(pc)
        if word is None:
            return SiteClass("pointer", 0, "none", _hex(seq), stop="instruction not executed")
        seq.append(word)
        if (word & 0xFC000000) == 0x14000000:  # b
            pc += 4 * _sext(_bits(word, 25, 0), 26)
            continue
        if word == 0xD503201F:  # nop (alternative padding)
            pc += 4
            continue
        if _is_cond_branch(word) or (word & 0xFC000000) == 0x94000000 or word == 0xD65F03C0:
            if pending_load is not None:
                return SiteClass("read", pending_load[1], "plain", _hex(seq),
                                 _target(pending_load[2], regs, consts))
            what = "call" if (word & 0xFC000000) == 0x94000000 else (
                "return" if word == 0xD65F03C0 else "conditional branch")
            return SiteClass("pointer", 0, "none", _hex(seq), stop=what)
        result = _access(word, regs, consts, pending_load, modified)
        if result is not None:
            op, size, access, base = result
            if op == "llsc":
                op, loop = _llsc_op(pc, words)
                seq += [words[pc + 4 * k] for k in range(1, loop + 1)]
            elif access == "lse" and op == "add" and (word & 31) != 31 and _result_used(
                    pc, word & 31, words):
                op = "add_return"
            if op == "load":
                pending_load = (_bits(word, 4, 0), size, base)
                pc += 4
                continue
            return SiteClass(op, size, access, _hex(seq), _target(base, regs, consts))
        if pending_load is not None and _uses(word, pending_load[0]):
            modified = modified or _is_alu(word)
        _track(word, pc, regs, consts)
        pc += 4
    if pending_load is not None:
        return SiteClass("read", pending_load[1], "plain", _hex(seq),
                         _target(pending_load[2], regs, consts))
    return SiteClass("pointer", 0, "none", _hex(seq), stop="no access within 24 instructions")


def _hex(seq: list[int]) -> str:
    return " ".join(f"{w:08x}" for w in seq)


def _const_step(pc: int, word: int | None, consts: dict[int, int]) -> None:
    if word is None:
        return
    if (word & 0x9F000000) == 0x90000000:  # adrp
        imm = _sext(_bits(word, 23, 5) << 2 | _bits(word, 30, 29), 21)
        consts[word & 31] = (pc & ~0xFFF) + (imm << 12)
    elif (word & 0xFFC00000) == 0x91000000 and _bits(word, 9, 5) in consts:  # add #imm
        consts[word & 31] = consts[_bits(word, 9, 5)] + _bits(word, 21, 10)
    elif (word & 0x7F000000) in (0x11000000, 0x31000000, 0x51000000, 0x71000000,
                                 0x0B000000, 0x2A000000, 0x52000000, 0x12000000):
        consts.pop(word & 31, None)


def _track(word: int, pc: int, regs: dict[int, tuple[str, int]], consts: dict[int, int]
           ) -> None:
    """Update the symbolic registers for an instruction that is not an access."""
    rd, rn, rm = word & 31, _bits(word, 9, 5), _bits(word, 20, 16)
    if (word & 0xFF200000) == 0x8B000000 and _bits(word, 15, 10) == 0:  # add xd, xn, xm
        sides = [regs.get(rn), regs.get(rm)]
        if any(s is not None and s[0] == "off" for s in sides):
            other = rm if sides[0] is not None and sides[0][0] == "off" else rn
            regs[rd] = ("ptr", other)
            if other in consts:
                regs[rd] = ("ptr", -1 - 0)  # constant base
                consts[("base", rd)] = consts[other]  # type: ignore[index]
            return
    if (word & 0xFFC00000) == 0x91000000 and rn in regs and regs[rn][0] == "ptr":
        base_key = ("base", rn)
        regs[rd] = regs[rn]
        if base_key in consts:  # type: ignore[comparison-overlap]
            consts[("base", rd)] = consts[base_key] + _bits(word, 21, 10)  # type: ignore
        return
    if (word & 0xFFE0FFE0) == 0xAA0003E0 and rm in regs:  # mov xd, xm
        regs[rd] = regs[rm]
        if ("base", rm) in consts:  # type: ignore[comparison-overlap]
            consts[("base", rd)] = consts[("base", rm)]  # type: ignore
        return
    _const_step(pc, word, consts)
    if rd in regs and _writes_rd(word):
        del regs[rd]


def _writes_rd(word: int) -> bool:
    # data-processing (immediate and register) and loads write Rd/Rt
    return ((word & 0x1C000000) == 0x10000000 or (word & 0x0E000000) == 0x0A000000
            or ((word & 0x3B000000) == 0x39000000 and _bits(word, 22, 22) == 1))


def _is_alu(word: int) -> bool:
    return (word & 0x1C000000) == 0x10000000 or (word & 0x0E000000) == 0x0A000000


def _uses(word: int, reg: int) -> bool:
    return _bits(word, 9, 5) == reg or _bits(word, 20, 16) == reg


def _target(base: int, regs: dict[int, tuple[str, int]], consts: dict[int, int]) -> int:
    value = consts.get(("base", base))  # type: ignore[call-overload]
    if value is None:
        value = consts.get(base)
    return int(value) if value is not None else 0


_LSE_OPS = {0: "add", 1: "and", 3: "or"}  # opc of LDADD, LDCLR, LDSET


def _access(word: int, regs: dict[int, tuple[str, int]], consts: dict[int, int],
            pending: tuple[int, int, int] | None, modified: bool
            ) -> tuple[str, int, str, int] | None:
    """(op, size, access, base register) when `word` accesses memory through the
    offset; op "load" marks a plain load whose use decides read or RMW."""
    rn, rm = _bits(word, 9, 5), _bits(word, 20, 16)
    size = 1 << _bits(word, 31, 30)

    def via_offset(reg: int) -> bool:
        return reg in regs and regs[reg][0] in ("ptr", "off")

    # LSE atomics: size 111000 A R 1 Rs o3 opc 00 Rn Rt
    if (word & 0x3F200C00) == 0x38200000 and via_offset(rn):
        o3, opc = _bits(word, 15, 15), _bits(word, 14, 12)
        if o3 == 1 and opc == 0:
            return ("xchg", size, "lse", rn)
        if o3 == 0 and opc in _LSE_OPS:
            op = _LSE_OPS[opc]
            return (op, size, "lse", rn)
    # CAS: size 0010001 L 1 Rs o0 11111 Rn Rt
    if (word & 0x3FA07C00) == 0x08A07C00 and via_offset(rn):
        return ("cmpxchg", size, "lse", rn)
    # CASP: 0 sz 001000 0 L 1 Rs o0 11111 Rn Rt
    if (word & 0xBFA07C00) == 0x08207C00 and via_offset(rn):
        return ("cmpxchg128", 16, "lse", rn)
    # LDXR / LDAXR: size 001000 0 1 0 11111 o0 11111 Rn Rt
    if (word & 0x3FFF7C00) == 0x085F7C00 and via_offset(rn):
        return ("llsc", size, "llsc", rn)
    # LDXP: 1 sz 001000 0 1 1 11111 o0 Rt2 Rn Rt
    if (word & 0xBFFF8000) == 0x887F0000 and via_offset(rn):
        return ("cmpxchg128", 16, "llsc", rn)
    # loads/stores, unsigned immediate: size 111 0 01 opc imm12 Rn Rt
    if (word & 0x3B000000) == 0x39000000 and _bits(word, 26, 26) == 0 and via_offset(rn):
        opc = _bits(word, 23, 22)
        if opc == 0:
            return _store(size, pending, modified, rn)
        return ("load", size, "plain", rn)
    # loads/stores, register offset: size 111 0 00 opc 1 Rm option S 10 Rn Rt
    if (word & 0x3B200C00) == 0x38200800 and _bits(word, 26, 26) == 0 and (
            via_offset(rn) or via_offset(rm)):
        base = rm if via_offset(rn) else rn
        opc = _bits(word, 23, 22)
        if opc == 0:
            return _store(size, pending, modified, base)
        return ("load", size, "plain", base)
    return None


def _store(size: int, pending: tuple[int, int, int] | None, modified: bool, base: int
           ) -> tuple[str, int, str, int]:
    if pending is not None and modified:
        return ("add", size, "plain", base)
    return ("write", size, "plain", base)


def _llsc_op(pc: int, words: Mapping[int, int]) -> tuple[str, int]:
    """The op of an LL/SC loop from the instructions between its LDXR and STXR:
    add/sub (add), bic (and), orr (or), a compare (cmpxchg), nothing (xchg); and how
    many instructions after the LDXR the loop has (through the STXR's retry branch)."""
    seen = "xchg"
    for k in range(1, 8):
        word = words.get(pc + 4 * k)
        if word is None:
            break
        if (word & 0x3F800000) == 0x08000000:  # STXR / STLXR
            after = words.get(pc + 4 * (k + 1))
            return seen, k + (1 if after is not None and (after & 0x7E000000) == 0x34000000
                              else 0)
        if (word & 0x1F000000) in (0x0B000000,) or (word & 0x1F800000) == 0x11000000:
            seen = "add" if seen == "xchg" else seen  # add/sub, register or immediate
        elif (word & 0x1F200000) == 0x0A200000:
            seen = "and"  # bic
        elif (word & 0x1F200000) == 0x0A000000 and _bits(word, 30, 29) == 1:
            seen = "or"
        elif (word & 0x7F00001F) in (0x6B00001F, 0x7100001F) or \
                (word & 0x7E000000) == 0x34000000:
            seen = "cmpxchg"  # cmp, or cbnz on the difference
        elif (word & 0x1F200000) == 0x0A000000 and _bits(word, 30, 29) == 2:
            seen = "cmpxchg"  # eor: the compare of a wide cmpxchg
    return seen, 0


def _result_used(pc: int, reg: int, words: Mapping[int, int]) -> bool:
    """Whether an instruction soon after `pc` reads `reg` (LDADD's old value: the
    add_return form) before something writes it."""
    for k in range(1, 6):
        word = words.get(pc + 4 * k)
        if word is None or word == 0xD65F03C0:
            return False
        if word == 0xD503201F:
            continue
        if _bits(word, 9, 5) == reg or (_bits(word, 20, 16) == reg and _is_alu(word)):
            return True
        if (word & 31) == reg:
            return False
    return False


# --- the census as tables ------------------------------------------------------------------

# What the top functions do, in a few words (from the kernel source they belong to).
FUNCTION_ROLES: dict[str, str] = {
    "rcu_all_qs": "cond_resched()'s RCU quiescent-state report (reads rcu_data.rcu_urgent_qs)",
    "rcu_qs": "RCU: note a quiescent state for this CPU",
    "rcu_momentary_eqs": "RCU: a momentary extended quiescent state",
    "rcu_is_cpu_rrupt_from_idle": "RCU: was the interrupt taken from idle",
    "__call_rcu_common": "call_rcu(): queue a callback on this CPU's RCU list",
    "el0t_64_sync": "exception entry from user space (syscalls, faults)",
    "el0_svc": "system call entry from user space",
    "call_on_irq_stack": "switch to this CPU's IRQ stack",
    "get_random_u16": "per-CPU batched random numbers",
    "get_random_u32": "per-CPU batched random numbers",
    "__update_cpu_freelist_fast": "SLUB fast path: swap the per-CPU freelist (cmpxchg128)",
    "kmem_cache_alloc_noprof": "SLUB object allocation (per-CPU slab)",
    "kmem_cache_free": "SLUB object free (per-CPU slab)",
    "kfree": "SLUB kfree (per-CPU slab)",
    "__kmalloc_noprof": "kmalloc (per-CPU slab)",
    "__mod_node_page_state": "vmstat: per-CPU node counter delta",
    "__mod_zone_page_state": "vmstat: per-CPU zone counter delta",
    "__mod_memcg_lruvec_state": "memcg: per-CPU LRU statistics",
    "__count_memcg_events": "memcg: per-CPU event counters",
    "mod_memcg_state": "memcg: per-CPU state counters",
    "percpu_counter_add_batch": "percpu_counter: per-CPU delta, folded when large",
    "free_unref_page_commit": "page allocator: free to the per-CPU page list",
    "free_unref_page": "page allocator: free to the per-CPU page list",
    "get_page_from_freelist": "page allocator: allocate (per-CPU page list)",
    "alloc_pages_noprof": "page allocator entry",
    "zone_statistics": "NUMA allocation statistics",
    "handle_mm_fault": "page fault: count_vm_event(PGFAULT)",
    "wp_page_reuse": "copy-on-write fault that reuses the page: count_vm_event(PGREUSE)",
    "pipe_write": "pipe write (per-CPU pipe buffer accounting)",
    "handle_softirqs": "run pending softirqs (kstat softirq counts)",
    "__raise_softirq_irqoff": "raise a softirq (per-CPU pending mask)",
    "fpsimd_save_user_state": "save the task's FP/SIMD state (per-CPU last-state)",
    "__schedule": "the scheduler",
    "copy_process": "fork: copy a task",
    "handle_percpu_devid_irq": "per-CPU interrupts (timer, IPIs): kstat irq counts",
    "ct_nmi_enter": "context tracking: interrupt entry (RCU's per-CPU state)",
    "ct_nmi_exit": "context tracking: interrupt exit (RCU's per-CPU state)",
    "ct_kernel_enter.constprop.0": "context tracking: kernel entry from idle or user",
    "ct_kernel_exit.constprop.0": "context tracking: kernel exit to idle or user",
    "do_interrupt_handler": "interrupt entry: record this CPU's interrupt registers",
    "rcu_note_context_switch": "RCU: a context switch is a quiescent state",
    "fpsimd_thread_switch": "context switch: whose FP/SIMD state is live on this CPU",
    "finish_task_switch.isra.0": "context switch: finish on the new task",
    "__flush_smp_call_function_queue": "run cross-CPU function calls queued to this CPU",
    "select_task_rq_fair": "scheduler: pick a CPU for a waking task",
    "__irq_exit_rcu": "interrupt exit: run softirqs, account time",
    "tick_irq_enter": "timer tick bookkeeping on interrupt entry",
    "__folio_batch_add_and_move": "LRU: per-CPU folio batches",
    "get_task_policy.part.0": "NUMA memory policy of the task",
    "vma_alloc_folio_noprof": "allocate a page for a user mapping",
    "rcu_sched_clock_irq": "RCU work on the scheduler tick",
}


def function_of(bundle: CensusBundle, addrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(function name, offset in it) of kernel text addresses, from the bundle's kallsyms."""
    sy = bundle.symbols
    text = sy[sy["type"].str.lower().isin(["t", "w"])]
    starts = text["addr"].to_numpy()
    idx = np.searchsorted(starts, addrs, side="right") - 1
    names = np.where(idx >= 0, text["name"].to_numpy()[np.maximum(idx, 0)], "?")
    return names, addrs - np.where(idx >= 0, starts[np.maximum(idx, 0)], 0)


def _symbol_of(bundle: CensusBundle, addr: int) -> str:
    """`symbol+0x..` for a percpu address (0: "")."""
    if not addr:
        return ""
    if "data_symbols" not in bundle._cache:  # once per bundle: ~450 sites ask
        sy = bundle.symbols[~bundle.symbols["type"].str.lower().isin(["t", "w"])]
        bundle._cache["data_symbols"] = (sy["addr"].to_numpy(dtype=np.uint64),
                                         sy["size"].to_numpy().astype(np.uint64),
                                         sy["name"].to_numpy())
    starts, sizes, names = bundle._cache["data_symbols"]
    inside = np.flatnonzero((starts <= np.uint64(addr)) & ((np.uint64(addr) - starts) < sizes))
    if not inside.size:
        return f"0x{addr:016x}"
    last = inside[-1]  # the last symbol (in the table's order) that holds the address
    off = addr - int(starts[last])
    return str(names[last]) + (f"+0x{off:x}" if off else "")


def site_table(bundle: CensusBundle) -> pd.DataFrame:
    """One row per site: addr, function, offset, kind, op, size, access, flavour, span
    (instructions from the offset read to the access: the site, what follows it and,
    for a `bl`, the copy's mrs and ret), target (percpu symbol reached, when its
    address is a link-time constant), role, one count column per phase and total.
    Sites inside the out-of-line copies are left out: their `bl` callers carry them."""
    if "sites" in bundle._cache:
        return bundle._cache["sites"].copy()
    words = dict(zip(bundle.words["addr"].tolist(), bundle.words["word"].tolist(),
                     strict=True))
    s = bundle.sites.copy()
    fn, off = function_of(bundle, s["addr"].to_numpy())
    s.insert(1, "function", fn)
    s.insert(2, "offset", off.astype(np.int64))
    s = s[s["function"] != "__kern_my_cpu_offset"].reset_index(drop=True)
    classes = [classify_site(int(a), k, words)
               for a, k in zip(s["addr"].tolist(), s["kind"].tolist(), strict=True)]
    s.insert(4, "op", [c.op for c in classes])
    s.insert(5, "size", [c.size for c in classes])
    s.insert(6, "access", [c.access for c in classes])
    s.insert(7, "flavour", [c.flavour for c in classes])
    spans = []
    for c, kind in zip(classes, s["kind"].tolist(), strict=True):
        n = 1 + (len(c.sequence.split()) if c.op != "pointer" else 0)
        spans.append(n + (2 if kind == "bl" else 0))
    s.insert(8, "span", spans)
    s.insert(9, "target", [_symbol_of(bundle, c.target) for c in classes])
    s.insert(10, "role", [FUNCTION_ROLES.get(f, "") for f in s["function"].tolist()])
    s["total"] = s[bundle.phases].sum(axis=1)
    bundle._cache["sites"] = s
    return s.copy()


COUNT_COLUMNS = ("phase", "function", "op", "size", "flavour", "atomics", "count", "span")


def census_counts(bundle: CensusBundle, phases: list[str] | None = None) -> pd.DataFrame:
    """The census as aggregated op counts, the input of `thiscpu.price_counts`: one row
    per (phase, function, op, size, flavour, atomics) with count and span (instructions
    per op as the kernel's code has them, count-weighted mean). `atomics`: "lse" or
    "llsc" for atomic sites, "plain" otherwise."""
    chosen = phases or [p for p in bundle.phases if p != "boot"]
    for p in chosen:
        if p not in bundle.phases:
            raise InputError(f"phase {p!r} is not in census {bundle.name}; choose from "
                             f"{', '.join(bundle.phases)}", field="phase")
    s = site_table(bundle)
    s["atomics"] = np.where(s["access"].isin(["lse", "llsc"]), s["access"], "plain")
    rows = []
    keys = ["function", "op", "size", "flavour", "atomics"]
    for p in chosen:
        part = s[s[p] > 0]
        if part.empty:
            continue
        g = part.assign(count=part[p], weighted=part[p] * part["span"]).groupby(
            keys, as_index=False)[["count", "weighted"]].sum()
        g.insert(0, "phase", p)
        rows.append(g)
    if not rows:
        return pd.DataFrame(columns=list(COUNT_COLUMNS))
    out = pd.concat(rows, ignore_index=True)
    out["span"] = out["weighted"] / out["count"]
    return out[list(COUNT_COLUMNS)].sort_values(["phase", "count"], ascending=[True, False],
                                                 ignore_index=True)


def phase_summary(bundle: CensusBundle) -> pd.DataFrame:
    """Per phase: kernel and user instructions, sites that ran, offset reads (site
    executions), this_cpu instructions (count x span) and their share of the kernel's
    instructions, and the wall seconds of the census and plain boots."""
    s = site_table(bundle)
    rows = []
    census_s = bundle.meta.get("phase_seconds_census", {})
    plain_s = bundle.meta.get("phase_seconds_plain", {})
    for p in bundle.meta["phases"]:
        name = p["name"]
        counts = s[name]
        insns = int((counts * s["span"]).sum())
        rows.append({"phase": name, "description": WORKLOADS[name].description
                     if name in WORKLOADS else "power-on to the first mark",
                     "kernel_insns": int(p["kernel_insns"]), "user_insns": int(p["user_insns"]),
                     "sites_run": int((counts > 0).sum()), "offset_reads": int(counts.sum()),
                     "this_cpu_insns": insns,
                     "this_cpu_share": insns / p["kernel_insns"] if p["kernel_insns"] else 0.0,
                     "census_seconds": float(census_s.get(name, float("nan"))),
                     "plain_seconds": float(plain_s.get(name, float("nan")))})
    return pd.DataFrame(rows)


def top_functions(bundle: CensusBundle, phase: str | None = None, n: int = 10
                  ) -> pd.DataFrame:
    """The functions whose sites ran most (in `phase`, or every workload phase), with
    their ops and what they do."""
    s = site_table(bundle)
    phases = [phase] if phase else [p for p in bundle.phases if p != "boot"]
    for p in phases:
        if p not in bundle.phases:
            raise InputError(f"phase {p!r} is not in census {bundle.name}; choose from "
                             f"{', '.join(bundle.phases)}", field="phase")
    s["count"] = s[phases].sum(axis=1)
    g = s.groupby("function", as_index=False).agg(
        count=("count", "sum"), sites=("addr", "size"),
        ops=("op", lambda x: ", ".join(sorted(set(x)))), role=("role", "first"))
    g["share"] = g["count"] / max(int(g["count"].sum()), 1)
    return g.sort_values("count", ascending=False, ignore_index=True).head(n)


def vm_event_index(bundle: CensusBundle, event: str) -> int:
    """The index of a vm event in enum vm_event_item, read from /proc/vmstat's order: the
    events follow the zone, node and writeback items and begin with pgpgin (PGPGIN is the
    enum's first item: include/linux/vm_event_item.h)."""
    names = list(dict.fromkeys(bundle.counters[bundle.counters["phase"] == bundle.phases[0]
                                               ]["name"]))
    if "pgpgin" not in names or event not in names:
        raise InputError(f"vm event {event!r} is not in the census's /proc/vmstat")
    return names.index(event) - names.index("pgpgin")


def counter_delta(bundle: CensusBundle, name: str) -> pd.Series:
    """A kernel counter's change over each phase after boot (from the marks' reads)."""
    c = bundle.counters[bundle.counters["name"] == name].set_index("phase")["value"]
    if c.empty:
        raise InputError(f"counter {name!r} is not in census {bundle.name}")
    c = c.reindex(bundle.phases)
    return c.diff().iloc[1:].astype(np.int64)


def event_sites(bundle: CensusBundle, event: str) -> pd.DataFrame:
    """The sites whose access reaches vm_event_states.event[EVENT] (address decoded from
    the kernel's code: adrp/add of the percpu symbol, plus the event's index times 8)."""
    index = vm_event_index(bundle, event)
    target = "vm_event_states" + (f"+0x{8 * index:x}" if index else "")
    s = site_table(bundle)
    return s[s["target"] == target].reset_index(drop=True)


def census_check(bundle: CensusBundle, events: tuple[str, ...] = ("pgfault", "pgreuse")
                 ) -> pd.DataFrame:
    """The census held to the kernel's own counters: for each vm event, the executions of
    the sites that increment it against /proc/vmstat's delta, per workload phase; and
    the `bl` calls into the out-of-line offset reads against those copies' own runs."""
    rows = []
    phases = bundle.phases[1:]
    for event in events:
        sites = event_sites(bundle, event)
        delta = counter_delta(bundle, event)
        for p in phases:
            rows.append({"check": f"{event}: vm_event_states site(s) vs /proc/vmstat",
                         "phase": p, "census": int(sites[p].sum()), "kernel": int(delta[p]),
                         "sites": ", ".join(sorted(set(sites["function"])))})
    copies = bundle.sites[function_of(bundle, bundle.sites["addr"].to_numpy())[0]
                          == "__kern_my_cpu_offset"]
    calls = bundle.sites[bundle.sites["kind"] == "bl"]
    for p in bundle.phases:
        rows.append({"check": "bl into __kern_my_cpu_offset vs the copies' mrs",
                     "phase": p, "census": int(calls[p].sum()), "kernel": int(copies[p].sum()),
                     "sites": f"{len(calls)} bl sites"})
    out = pd.DataFrame(rows)
    out["equal"] = out["census"] == out["kernel"]
    return out


# What a census cannot tell a workload, said with every census workload.
CENSUS_WORKLOAD_ASSUMPTIONS = (
    "counted, not sampled: each row is one site's op kind with its exact executions in "
    "the phase (count)",
    "the plugin counts all CPUs together: all ops are put on CPU 0, so per-CPU "
    "figures and op rates do not apply (a counted workload has no times)",
    "a plain read or write whose code cannot tell this_cpu_*() from __this_cpu_*() is "
    "priced as this_cpu_*() (the upper bound, as census_savings)",
    "pointer sites (this_cpu_ptr(), per_cpu_ptr(), smp_processor_id() and accesses past "
    "a branch) are left out: no op sequence the local scheme changes",
    "variable: the percpu symbol the access reaches when its address is a link-time "
    "constant, else '(in FUNCTION)'",
)


def census_workload(bundle: CensusBundle | str | Path, phase: str) -> pd.DataFrame:
    """One phase of a census as a counted workload (the `thiscpu` workload format with a
    `count` column), which `thiscpu.price_workload` and `percpu-explorer cost` take like
    any other. One row per (variable, function's op, size, flavour);
    `attrs["assumptions"]` says what the census cannot tell (CENSUS_WORKLOAD_ASSUMPTIONS),
    `attrs["source"]` names the census and phase, `attrs["counted_in"]` the kernel."""
    b = bundle if isinstance(bundle, CensusBundle) else load_census(bundle)
    if phase not in b.phases:
        raise InputError(f"phase {phase!r} is not in census {b.name}; choose from "
                         f"{', '.join(b.phases)}", field="phase")
    s = site_table(b)
    s = s[(s[phase] > 0) & (s["op"] != "pointer")]
    if s.empty:
        raise InputError(f"phase {phase!r} of census {b.name} ran no this_cpu op",
                         field="phase")
    variable = s["target"].where(s["target"] != "", "(in " + s["function"] + ")")
    frame = pd.DataFrame({"variable": variable, "op": s["op"], "size": s["size"],
                          "flavour": s["flavour"].replace("any", "this_cpu"),
                          "count": s[phase]})
    frame = frame.groupby(["variable", "op", "size", "flavour"], as_index=False,
                          sort=False)["count"].sum()
    frame = frame.sort_values("count", ascending=False, ignore_index=True)
    frame.insert(0, "time", 0)
    frame.insert(1, "cpu", 0)
    frame.insert(2, "task", 0)
    frame["value"] = 0
    source = f"census {b.name}, phase {phase}"
    out = validate_workload(frame[["time", "cpu", "task", "op", "size", "variable", "value",
                                   "flavour", "count"]], source)
    out.attrs["source"] = source
    out.attrs["counted_in"] = (f"{b.meta.get('kernel_release', 'the kernel')}, "
                               f"{b.meta.get('preemption', 'preemption model unknown')}")
    out.attrs["assumptions"] = CENSUS_WORKLOAD_ASSUMPTIONS
    return out
