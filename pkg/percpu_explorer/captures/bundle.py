"""Real-kernel captures: the texts a running arm64 kernel prints, parsed, and the
model's layout held against them.

A capture *bundle* is a folder with `meta.json` (kernel version, the config facts
read from the kernel package's config file, how the capture was made) and one text
per source, gzip'd when large:

    uname, cmdline, cpuinfo, meminfo
    vmcoreinfo    the VMCOREINFO note of /proc/kcore (KEY=VALUE lines)
    vmallocinfo   /proc/vmallocinfo
    ptdump        /sys/kernel/debug/kernel_page_tables (CONFIG_PTDUMP_DEBUGFS)
    percpu_stats  /sys/kernel/debug/percpu_stats (CONFIG_PERCPU_STATS)
    trace         /sys/kernel/tracing/trace with the percpu:* events
    dmesg         the kernel log

Every parser turns one text into a DataFrame (or a small dataclass). Parsers are
tolerant of what real files contain (headers, blank lines, unknown attributes and
events, and a last line cut short: a line without its newline is left out, never
misread) and strict about what they cannot read: they raise `CaptureParseError` (a
`ValueError`) naming the source and the 1-based line number.

Parsers: `parse_ptdump` / `ptdump_markers`, `parse_vmallocinfo`, `parse_vmcoreinfo` /
`vmcoreinfo_numbers`, `parse_dmesg` / `percpu_first_chunk` / `memory_lines`,
`parse_percpu_stats` / `percpu_stats_section`, `parse_trace` / `percpu_events`.
Bundles: `CaptureBundle`, `save_bundle`, `load_bundle`, `config_facts`.
The model against a capture: `derive_config`, `layout_comparison`, `compare`,
`format_comparison`. Making captures: `percpu_explorer.qemu`.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..kernel import KernelConfig, Layout, compute_layout, fmt_addr
from ..percpu import TraceReplay, build_alloc_info, replay_trace

SOURCES: tuple[str, ...] = (
    "uname", "cmdline", "cpuinfo", "vmcoreinfo", "vmallocinfo", "ptdump",
    "percpu_stats", "meminfo", "trace", "dmesg",
)


class CaptureParseError(ValueError):
    """A line a parser cannot read: `source`, 1-based `line` number and its `text`."""

    def __init__(self, source: str, line: int, text: str, why: str) -> None:
        self.source = source
        self.line = line
        self.text = text
        super().__init__(f"{source} line {line}: {why}: {text[:120]!r}")


# --- bundles ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CaptureBundle:
    """The raw texts of one capture (`texts[source]`) and its `meta` facts."""

    meta: dict[str, Any]
    texts: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.meta.get("name", "capture"))

    def text(self, source: str) -> str:
        """The raw text of a source; KeyError naming what the bundle has if absent."""
        if source not in self.texts:
            raise KeyError(f"capture {self.name!r} has no {source!r} text "
                           f"(it has {sorted(self.texts)})")
        return self.texts[source]

    def __repr__(self) -> str:
        return (f"CaptureBundle({self.name!r}, kernel {self.meta.get('kernel_release')}, "
                f"sources {sorted(self.texts)})")


_GZIP_ABOVE = 32 * 1024


def save_bundle(bundle: CaptureBundle, folder: str | Path) -> Path:
    """Write `meta.json` and one `SOURCE.txt` (or `SOURCE.txt.gz` above 32 KiB) each."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in list(folder.glob("*.txt")) + list(folder.glob("*.txt.gz")):
        old.unlink()
    for source, text in bundle.texts.items():
        data = text.encode()
        if len(data) > _GZIP_ABOVE:
            (folder / f"{source}.txt.gz").write_bytes(gzip.compress(data, 9, mtime=0))
        else:
            (folder / f"{source}.txt").write_bytes(data)
    meta = dict(bundle.meta, name=folder.name)
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return folder


def load_bundle(folder: str | Path) -> CaptureBundle:
    """Read a bundle folder written by `save_bundle`."""
    folder = Path(folder)
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"{folder} is not a capture bundle: no meta.json")
    meta = json.loads(meta_file.read_text())
    meta.setdefault("name", folder.name)
    texts: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        if path.name.endswith(".txt.gz"):
            texts[path.name.removesuffix(".txt.gz")] = gzip.decompress(
                path.read_bytes()).decode("utf-8", "replace")
        elif path.name.endswith(".txt"):
            texts[path.name.removesuffix(".txt")] = path.read_text(errors="replace")
    return CaptureBundle(meta=meta, texts=texts)


# --- kernel config facts ---------------------------------------------------------------

_CONFIG_KEYS = (
    "CONFIG_ARM64_4K_PAGES", "CONFIG_ARM64_16K_PAGES", "CONFIG_ARM64_64K_PAGES",
    "CONFIG_ARM64_PAGE_SHIFT", "CONFIG_ARM64_VA_BITS", "CONFIG_PGTABLE_LEVELS",
    "CONFIG_NR_CPUS", "CONFIG_PREEMPT_NONE", "CONFIG_PREEMPT_VOLUNTARY", "CONFIG_PREEMPT",
    "CONFIG_PREEMPT_RT", "CONFIG_PREEMPT_DYNAMIC", "CONFIG_PREEMPT_COUNT", "CONFIG_KVM",
    "CONFIG_UNMAP_KERNEL_AT_EL0", "CONFIG_ACPI_APEI_GHES", "CONFIG_ARM_SDE_INTERFACE",
    "CONFIG_RELOCATABLE", "CONFIG_RANDOMIZE_BASE", "CONFIG_KASAN", "CONFIG_KASAN_GENERIC",
    "CONFIG_KASAN_SW_TAGS", "CONFIG_KASAN_HW_TAGS", "CONFIG_PTDUMP_DEBUGFS",
    "CONFIG_PERCPU_STATS", "CONFIG_ARM64_LSE_ATOMICS", "CONFIG_NUMA", "CONFIG_NODES_SHIFT",
    "CONFIG_NEED_PER_CPU_EMBED_FIRST_CHUNK", "CONFIG_NEED_PER_CPU_PAGE_FIRST_CHUNK",
    "CONFIG_MEMCG", "CONFIG_HZ", "CONFIG_LOCALVERSION", "CONFIG_MODULES",
    "CONFIG_MEM_ALLOC_PROFILING", "CONFIG_RANDOM_KMALLOC_CACHES", "CONFIG_LOCKDEP",
)


def config_facts(config_text: str) -> dict[str, str | None]:
    """The layout- and percpu-relevant CONFIG_ values of a kernel .config text
    (`None` for "is not set" and for options the file does not mention)."""
    values: dict[str, str | None] = dict.fromkeys(_CONFIG_KEYS)
    for line in config_text.splitlines():
        match = re.match(r"^(CONFIG_\w+)=(.*)$", line)
        if match and match.group(1) in values:
            values[match.group(1)] = match.group(2).strip('"')
    return values


def preemption_model(facts: dict[str, str | None]) -> str | None:
    """The preemption model a config selects, e.g. "PREEMPT_VOLUNTARY (no preempt count)"."""
    for model in ("PREEMPT_RT", "PREEMPT_DYNAMIC", "PREEMPT", "PREEMPT_VOLUNTARY",
                  "PREEMPT_NONE"):
        if facts.get(f"CONFIG_{model}") == "y":
            count = (facts.get("CONFIG_PREEMPT_COUNT") == "y"
                     or model not in ("PREEMPT_VOLUNTARY", "PREEMPT_NONE"))
            return model + ("" if count else " (no preempt count)")
    return None


_RELEASE_RE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


def kernel_version_from_release(release: str) -> str:
    """`uname -r` to the version `KernelConfig` takes: "6.12.117+deb12-arm64" -> "6.12.117"."""
    match = _RELEASE_RE.match(release.strip())
    if not match:
        raise ValueError(f"kernel release {release!r} does not start with a version number")
    major, minor, sub = match.groups()
    return f"{major}.{minor}" + (f".{sub}" if sub else "")


# --- shared parsing helpers ------------------------------------------------------------

def _lines(text: str) -> list[str]:
    """The complete lines of a text: a last line without its newline may have been cut
    anywhere (a console or file read short), so it is left out rather than misread."""
    return text.replace("\r\n", "\n").split("\n")[:-1]


def _int(source: str, number: int, line: str, value: str, base: int = 10) -> int:
    try:
        return int(value, base)
    except ValueError:
        raise CaptureParseError(source, number, line, f"{value!r} is not a number") from None


def _frame(rows: list[dict[str, Any]], columns: list[str], dtypes: dict[str, str],
           ) -> pd.DataFrame:
    """Rows to a DataFrame; `dtypes` columns are built straight from the Python values
    (nullable Int64/UInt64), never through float64, so 64-bit addresses stay exact."""
    data: dict[str, Any] = {}
    for column in columns:
        values = [row.get(column) for row in rows]
        if column in dtypes:
            data[column] = pd.array(values, dtype=dtypes[column])
        else:
            data[column] = pd.Series(values, dtype=object if not values else None)
    return pd.DataFrame(data, columns=columns)


# --- ptdump: /sys/kernel/debug/kernel_page_tables --------------------------------------

PTDUMP_LEVELS = ("PGD", "P4D", "PUD", "PMD", "PTE")
_SIZE_UNITS = {"K": 10, "M": 20, "G": 30, "T": 40, "P": 50, "E": 60}
_PTDUMP_RANGE = re.compile(
    r"^0x(?P<start>[0-9a-f]{16})-0x(?P<end>[0-9a-f]{16})\s+(?P<size>\d+)(?P<unit>[KMGTPE])"
    r" (?P<level>[A-Z0-9]{3})(?P<attrs>(?:\s.*)?)$")
_PTDUMP_MARKER = re.compile(r"^---\[ (?P<label>.*) \]---$")


def parse_ptdump(text: str) -> pd.DataFrame:
    """Ranges of an arm64 ptdump (arch/arm64/mm/ptdump.c note_page()), one row each.

    A range line is `0x<start>-0x<end>   <size><unit> <level> <attributes>`; the end
    is exclusive and 0x0000000000000000 means the top of the address space (2**64).
    `section` is the last `---[ label ]---` marker above the line. `valid` is False
    for an empty range (no attributes) or one marked `F` (not valid). The printed
    size must equal end - start: a line where it does not is unreadable.
    Columns: line, section, start, end, size, level, attributes, valid.
    """
    rows: list[dict[str, Any]] = []
    lines = _lines(text)
    section: str | None = None
    for number, line in enumerate(lines, 1):
        stripped = line.rstrip()
        if not stripped.strip():
            continue
        marker = _PTDUMP_MARKER.match(stripped)
        if marker:
            section = marker.group("label")
            continue
        match = _PTDUMP_RANGE.match(stripped)
        problem = None
        if match:
            start, end = int(match.group("start"), 16), int(match.group("end"), 16)
            end_value = end or 1 << 64
            size = int(match.group("size")) << _SIZE_UNITS[match.group("unit")]
            level = match.group("level")
            if end_value <= start:
                problem = "the range ends before it starts"
            elif size != end_value - start:
                problem = f"the size {match.group('size')}{match.group('unit')} is not end - start"
            elif level not in PTDUMP_LEVELS:
                problem = f"unknown page-table level {level!r}"
        else:
            problem = "not a ptdump range or ---[ marker ]--- line"
        if problem:
            raise CaptureParseError("ptdump", number, line, problem)
        attrs = " ".join(match.group("attrs").split())
        rows.append({"line": number, "section": section, "start": start, "end": end_value,
                     "size": end_value - start, "level": level,
                     "attributes": attrs, "valid": bool(attrs) and "F" not in attrs.split()})
    return pd.DataFrame(rows, columns=["line", "section", "start", "end", "size", "level",
                                       "attributes", "valid"])


def ptdump_markers(text: str) -> pd.DataFrame:
    """The `---[ label ]---` markers of a ptdump and the address each was crossed at.

    note_page() prints a marker when the walk reaches an entry at or above the
    marker's address and starts the next range there, so `address` is the start of
    the first range printed after the marker (None when no range follows).
    Columns: line, label, address.
    """
    ranges = parse_ptdump(text)
    starts = dict(zip(ranges["line"], ranges["start"], strict=True))
    rows: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for number, line in enumerate(_lines(text), 1):
        marker = _PTDUMP_MARKER.match(line.rstrip())
        if marker:
            pending.append({"line": number, "label": marker.group("label"), "address": None})
        elif number in starts:
            for row in pending:
                row["address"] = int(starts[number])
            rows += pending
            pending = []
    rows += pending
    return pd.DataFrame(rows, columns=["line", "label", "address"])


# --- /proc/vmallocinfo -----------------------------------------------------------------

VMALLOC_FLAGS = ("ioremap", "sparse", "vmalloc", "vmap", "user", "dma-coherent", "vpages",
                 "vm_map_ram", "unpurged", "vm_area")
_VMALLOC_LINE = re.compile(
    r"^0x(?P<start>[0-9a-f]+)-0x(?P<end>[0-9a-f]+)\s+(?P<size>\d+)(?P<rest>(?:\s.*)?)$")


def parse_vmallocinfo(text: str) -> pd.DataFrame:
    """/proc/vmallocinfo (mm/vmalloc.c sformat_value()), one row per area.

    `caller` is the `%pS` symbol (e.g. `pcpu_get_vm_areas+0x0/0x1120`) and `function`
    its name alone; `pages=`, `phys=` and `N<node>=` become columns; flag words
    (ioremap, vmalloc, vmap, user, vpages, vm_map_ram, ...) are listed in `flags`;
    other words are kept in `other`. Columns: line, start, end, size, caller,
    function, pages, phys, flags, nodes, other.
    """
    rows: list[dict[str, Any]] = []
    lines = _lines(text)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        match = _VMALLOC_LINE.match(line.strip())
        problem = None
        if not match:
            problem = "not a `0xSTART-0xEND SIZE ...` vmallocinfo line"
        else:
            start, end = int(match.group("start"), 16), int(match.group("end"), 16)
            size = int(match.group("size"))
            if end < start or start >= 1 << 64 or end >= 1 << 64:
                problem = "the range is not a 64-bit [start, end)"
            elif size != end - start:
                problem = f"the size {size} is not end - start ({end - start})"
        if problem:
            raise CaptureParseError("vmallocinfo", number, line, problem)
        row: dict[str, Any] = {"line": number, "start": start, "end": end, "size": size,
                               "caller": None, "function": None, "pages": None,
                               "phys": None, "flags": (), "nodes": (), "other": ()}
        flags: list[str] = []
        nodes: list[str] = []
        other: list[str] = []
        for word in match.group("rest").split():
            key, eq, value = word.partition("=")
            if eq and key == "pages" and value.isdigit():
                row["pages"] = int(value)
            elif eq and key == "phys" and re.fullmatch(r"0x[0-9a-f]+", value):
                row["phys"] = int(value, 16)
            elif eq and re.fullmatch(r"N\d+", key) and value.isdigit():
                nodes.append(word)
            elif word in VMALLOC_FLAGS:
                flags.append(word)
            elif row["caller"] is None and not eq and not flags and "+0x" in word:
                row["caller"] = word
                row["function"] = word.split("+", 1)[0]
            else:
                other.append(word)
        row.update(flags=tuple(flags), nodes=tuple(nodes), other=tuple(other))
        rows.append(row)
    return _frame(rows, ["line", "start", "end", "size", "caller", "function", "pages",
                         "phys", "flags", "nodes", "other"],
                  {"pages": "Int64", "phys": "UInt64"})


# --- VMCOREINFO ------------------------------------------------------------------------

_VMCOREINFO_LINE = re.compile(r"^(?P<kind>[A-Z][A-Z0-9_-]*)(?:\((?P<name>[^()=\s]+)\))?"
                              r"=(?P<value>\S*)$")
# Keys whose value is hex without 0x (SYMBOL(x)=ffff..., KERNELOFFSET=13c258a00000).
_VMCOREINFO_HEX = ("SYMBOL", "KERNELOFFSET")


def parse_vmcoreinfo(text: str) -> pd.DataFrame:
    """The VMCOREINFO note (kernel/vmcore_info.c and arch/arm64/kernel/vmcore_info.c):
    `KIND(name)=value` lines such as `NUMBER(VMALLOC_END)=0xfffffdffbf800000`,
    `SYMBOL(swapper_pg_dir)=ffff...`, `KERNELOFFSET=0`, `OSRELEASE=6.12.117+deb12-arm64`.

    `key` is the text before `=`; `number` is the value as an integer where it is one
    (SYMBOL and KERNELOFFSET are hex without 0x; NUMBER/SIZE/OFFSET/LENGTH are C
    integers), else None. Columns: line, key, kind, name, value, number.
    """
    rows: list[dict[str, Any]] = []
    lines = _lines(text)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        match = _VMCOREINFO_LINE.match(line.strip())
        if not match:
            raise CaptureParseError("vmcoreinfo", number, line, "not a KEY=VALUE line")
        kind, name, value = match.group("kind"), match.group("name"), match.group("value")
        parsed: int | None = None
        try:
            if kind in _VMCOREINFO_HEX:
                parsed = int(value, 16)
            elif kind in ("NUMBER", "SIZE", "OFFSET", "LENGTH", "PAGESIZE", "CRASHTIME"):
                parsed = int(value, 0)
        except ValueError:
            raise CaptureParseError("vmcoreinfo", number, line,
                                    f"{kind} value {value!r} is not a number") from None
        key = f"{kind}({name})" if name else kind
        rows.append({"line": number, "key": key, "kind": kind, "name": name, "value": value,
                     "number": parsed})
    return pd.DataFrame(rows, columns=["line", "key", "kind", "name", "value", "number"])


def vmcoreinfo_numbers(frame: pd.DataFrame) -> dict[str, int]:
    """`NUMBER(X)` entries and KERNELOFFSET as {X: int}, plus `vabits_actual`
    (64 - TCR_EL1.T1SZ, the VA size the kernel runs with) when T1SZ is given."""
    numbers = {row.name: int(row.number) for row in frame.itertuples()
               if row.kind == "NUMBER" and row.number is not None}
    for row in frame.itertuples():
        if row.kind == "KERNELOFFSET" and row.number is not None:
            numbers["KERNELOFFSET"] = int(row.number)
    if "TCR_EL1_T1SZ" in numbers:
        numbers["vabits_actual"] = 64 - numbers["TCR_EL1_T1SZ"]
    return numbers


# --- the kernel log --------------------------------------------------------------------

_DMESG_LINE = re.compile(r"^(?:<(?P<level>\d+)>)?(?:\[\s*(?P<time>\d+\.\d+)\]\s?)?(?P<msg>.*)$")


def parse_dmesg(text: str) -> pd.DataFrame:
    """The kernel log as `dmesg` prints it (`[    0.000000] message`, optionally with a
    `<level>` prefix); lines without a timestamp (continuations) keep time NaN.
    `subsystem` is the `prefix:` of the message when it has one (`percpu`, `pcpu-alloc`).
    Columns: line, time, level, subsystem, message.
    """
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(_lines(text), 1):
        if not line.strip():
            continue
        match = _DMESG_LINE.match(line)
        assert match is not None  # the pattern matches every line
        message = match.group("msg")
        prefix = re.match(r"^([\w.-]+): ", message)
        rows.append({"line": number, "time": float(match.group("time") or "nan"),
                     "level": int(match.group("level")) if match.group("level") else None,
                     "subsystem": prefix.group(1) if prefix else None, "message": message})
    return _frame(rows, ["line", "time", "level", "subsystem", "message"],
                  {"level": "Int64", "time": "float64"})


@dataclass(frozen=True)
class FirstChunkInfo:
    """What mm/percpu.c logs about the first chunk (pcpu_embed_first_chunk() and
    pcpu_dump_alloc_info()): sizes of struct pcpu_alloc_info and the CPU groups.

    `percpu: Embedded P pages/cpu sS rR dD uU` and
    `pcpu-alloc: sS rR dD uU alloc=N*ATOM`, then `[group] cpu ...` lists.
    """

    kind: str  # "Embedded" or the page first chunk's page size ("4K")
    pages_per_cpu: int
    static_size: int
    reserved_size: int
    dyn_size: int
    unit_size: int | None
    alloc_atoms: int | None  # `alloc=N*ATOM`: the allocation size is N atoms
    atom_size: int | None
    groups: tuple[tuple[int, ...], ...]
    nr_units: int = 0  # units in the groups, the unused ones (`-----`) included

    @property
    def nr_cpus(self) -> int:
        return sum(len(g) for g in self.groups)


_EMBEDDED_EMB = re.compile(r"^percpu: Embedded (?P<pages>\d+) pages/cpu s(?P<s>\d+) "
                           r"r(?P<r>\d+) d(?P<d>\d+) u(?P<u>\d+)\s*$")
_PAGE_FC = re.compile(r"^percpu: (?P<pages>\d+) (?P<kind>\w+) pages/cpu s(?P<s>\d+) "
                      r"r(?P<r>\d+) d(?P<d>\d+)\s*$")
_ALLOC_INFO = re.compile(r"^pcpu-alloc: s(?P<s>\d+) r(?P<r>\d+) d(?P<d>\d+) u(?P<u>\d+) "
                         r"alloc=(?P<n>\d+)\*(?P<atom>\d+)\s*$")
_GROUPS = re.compile(r"^pcpu-alloc:(?P<body>(?:\s+\[\d+\](?:\s+(?:\d+|-+))+)+)\s*$")


def percpu_first_chunk(dmesg: pd.DataFrame) -> FirstChunkInfo | None:
    """The first-chunk facts from a parsed kernel log (`parse_dmesg`), or None when the
    log has no `percpu:` first-chunk line. A `percpu:`/`pcpu-alloc:` line of those
    forms that does not parse raises CaptureParseError."""
    found: dict[str, Any] = {}
    groups: list[list[int]] = []
    units = 0
    for row in dmesg.itertuples():
        message = row.message.rstrip()
        if message.startswith("percpu: Embedded "):
            m = _EMBEDDED_EMB.match(message)
            if not m:
                raise CaptureParseError("dmesg", row.line, message, "unreadable first-chunk line")
            found.update(kind="Embedded", pages=int(m["pages"]), s=int(m["s"]), r=int(m["r"]),
                         d=int(m["d"]), u=int(m["u"]))
        elif message.startswith("percpu: ") and " pages/cpu " in message:
            m = _PAGE_FC.match(message)
            if not m:
                raise CaptureParseError("dmesg", row.line, message, "unreadable first-chunk line")
            found.update(kind=m["kind"], pages=int(m["pages"]), s=int(m["s"]), r=int(m["r"]),
                         d=int(m["d"]))
        elif message.startswith("pcpu-alloc: s"):
            m = _ALLOC_INFO.match(message)
            if not m:
                raise CaptureParseError("dmesg", row.line, message, "unreadable pcpu-alloc line")
            found.update(u=int(m["u"]), n=int(m["n"]), atom=int(m["atom"]))
        elif message.startswith("pcpu-alloc: ["):
            m = _GROUPS.match(message)
            if not m:
                raise CaptureParseError("dmesg", row.line, message, "unreadable CPU group line")
            for group, cpu in re.findall(r"\[(\d+)\]\s+(\d+|-+)", m["body"]):
                while len(groups) <= int(group):
                    groups.append([])
                units += 1
                if cpu.isdigit():
                    groups[int(group)].append(int(cpu))
    if "pages" not in found:
        return None
    return FirstChunkInfo(
        kind=found["kind"], pages_per_cpu=found["pages"], static_size=found["s"],
        reserved_size=found["r"], dyn_size=found["d"], unit_size=found.get("u"),
        alloc_atoms=found.get("n"), atom_size=found.get("atom"),
        groups=tuple(tuple(g) for g in groups), nr_units=units)


def memory_lines(dmesg: pd.DataFrame) -> pd.DataFrame:
    """The kernel log's memory-layout lines: `Memory: ...K/...K available`, zone ranges,
    `Virtual kernel memory layout` blocks (older kernels) and NUMA node ranges."""
    pattern = (r"^(?:Memory: |Zone ranges|  (?:DMA|DMA32|Normal|Movable)\b|"
               r"Virtual kernel memory|\s+(?:modules|vmalloc|vmemmap|fixed|PCI I/O|memory|"
               r"\.\w+)\s*:|NUMA: |Early memory node ranges|  node\s+\d+:)")
    mask = dmesg["message"].str.contains(pattern, regex=True)
    return dmesg[mask].reset_index(drop=True)


# --- debugfs percpu_stats --------------------------------------------------------------

_STAT_LINE = re.compile(r"^\s+(?P<key>\w+)\s*:\s+(?P<value>-?\d+)\s*$")


def parse_percpu_stats(text: str) -> pd.DataFrame:
    """debugfs `percpu_stats` (mm/percpu-stats.c, CONFIG_PERCPU_STATS) in long form.

    `section` is "Allocation Info", "Global Stats" or "Per Chunk Stats"; chunks are
    numbered in print order (the reserved chunk first, then by slot) with their
    header label ("Reserved Chunk", "First Chunk", "to_depopulate", "sidelined", "").
    Columns: line, section, chunk, chunk_label, key, value.
    """
    rows: list[dict[str, Any]] = []
    lines = _lines(text)
    section: str | None = None
    chunk: int | None = None
    label = ""
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or set(stripped) == {"-"} or stripped == "Percpu Memory Statistics":
            continue
        if stripped.endswith(":") and stripped[:-1] in ("Allocation Info", "Global Stats",
                                                         "Per Chunk Stats"):
            section, chunk = stripped[:-1], None
            continue
        head = re.match(r"^Chunk\b\s*(?::\s*<-\s*(?P<arrow>[\w ]+?)|\((?P<paren>\w+)\):?|:)?$",
                        stripped)
        if head and section == "Per Chunk Stats":
            chunk = 0 if chunk is None else chunk + 1
            label = (head["arrow"] or head["paren"] or "").strip()
            continue
        match = _STAT_LINE.match(line)
        if not match or section is None or (section == "Per Chunk Stats" and chunk is None):
            raise CaptureParseError("percpu_stats", number, line,
                                    "not a percpu_stats header or `  key : value` line")
        rows.append({"line": number, "section": section, "chunk": chunk,
                     "chunk_label": label if chunk is not None else None,
                     "key": match["key"], "value": int(match["value"])})
    return _frame(rows, ["line", "section", "chunk", "chunk_label", "key", "value"],
                  {"chunk": "Int64"})


def percpu_stats_section(stats: pd.DataFrame, section: str) -> dict[str, int]:
    """One section of `parse_percpu_stats` output as {key: value}."""
    part = stats[stats["section"] == section]
    return dict(zip(part["key"], (int(v) for v in part["value"]), strict=True))


# --- tracing output --------------------------------------------------------------------

PERCPU_EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "percpu_alloc_percpu": ("call_site", "reserved", "is_atomic", "size", "align",
                            "base_addr", "off", "ptr", "bytes_alloc", "gfp_flags"),
    "percpu_free_percpu": ("base_addr", "off", "ptr"),
    "percpu_alloc_percpu_fail": ("reserved", "is_atomic", "size", "align"),
    "percpu_create_chunk": ("base_addr",),
    "percpu_destroy_chunk": ("base_addr",),
}
_FIELD_KIND = {"call_site": "str", "gfp_flags": "str", "base_addr": "hex", "ptr": "hex"}
TRACE_COLUMNS = ["line", "task", "pid", "cpu", "flags", "timestamp", "event", "call_site",
                 "reserved", "is_atomic", "size", "align", "base_addr", "off", "ptr",
                 "bytes_alloc", "gfp_flags", "message"]
_TRACE_LINE = re.compile(
    r"^\s*(?P<task>.+?)-(?P<pid>\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>[^\s:]{4,6})\s+)?(?P<ts>\d+\.\d+):\s+(?P<event>\w+):\s?(?P<rest>.*)$")
_TRACE_HEADER = re.compile(r"entries-in-buffer/entries-written:\s*(\d+)/(\d+)\s+#P:(\d+)")
_TRACE_LOST = re.compile(r"^CPU:(\d+) \[LOST (\d+) EVENTS\]$")


def parse_trace(text: str) -> pd.DataFrame:
    """`/sys/kernel/tracing/trace` (the default output format), one row per event.

    The percpu events (include/trace/events/percpu.h) fill their fields as typed
    columns: `call_site` and `gfp_flags` as text, `base_addr` and `ptr` as unsigned
    64-bit addresses (real ones with `no_hash_pointers`), the rest as integers; a
    field an event (or kernel version) does not print is <NA>. Other events, such as
    `tracing_mark_write`, keep their text in `message`. The header's
    entries-in-buffer/entries-written and CPU count, and `[LOST n EVENTS]` counts, are
    in `frame.attrs` (entries_in_buffer, entries_written, nr_cpus, lost_events).
    Columns: TRACE_COLUMNS.
    """
    rows: list[dict[str, Any]] = []
    attrs: dict[str, int] = {"lost_events": 0}
    lines = _lines(text)
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            header = _TRACE_HEADER.search(stripped)
            if header:
                attrs.update(entries_in_buffer=int(header[1]), entries_written=int(header[2]),
                             nr_cpus=int(header[3]))
            continue
        lost = _TRACE_LOST.match(stripped)
        if lost:
            attrs["lost_events"] += int(lost[2])
            continue
        try:
            rows.append(_trace_row(number, line))
        except CaptureParseError:
            raise
    frame = _frame(rows, TRACE_COLUMNS, {
        "pid": "Int64", "cpu": "Int64", "timestamp": "float64", "reserved": "Int64",
        "is_atomic": "Int64", "size": "Int64", "align": "Int64", "base_addr": "UInt64",
        "off": "Int64", "ptr": "UInt64", "bytes_alloc": "Int64"})
    frame.attrs.update(attrs)
    return frame


def _trace_row(number: int, line: str) -> dict[str, Any]:
    match = _TRACE_LINE.match(line)
    if not match:
        raise CaptureParseError("trace", number, line, "not a `TASK-PID [CPU] ... EVENT:` line")
    row: dict[str, Any] = dict.fromkeys(TRACE_COLUMNS)
    row.update(line=number, task=match["task"].strip(), pid=int(match["pid"]),
               cpu=int(match["cpu"]), flags=match["flags"], timestamp=float(match["ts"]),
               event=match["event"])
    fields = PERCPU_EVENT_FIELDS.get(match["event"])
    if fields is None:
        row["message"] = match["rest"]
        return row
    for word in match["rest"].split():
        key, eq, value = word.partition("=")
        if not eq or key not in fields:
            raise CaptureParseError("trace", number, line,
                                    f"unexpected {word!r} in a {match['event']} event")
        kind = _FIELD_KIND.get(key)
        if kind == "str":
            row[key] = value
            continue
        try:
            parsed = int(value, 16) if kind == "hex" else int(value)
        except ValueError:
            raise CaptureParseError("trace", number, line,
                                    f"{key}={value!r} is not a number") from None
        if kind == "hex" and not 0 <= parsed < 1 << 64:
            raise CaptureParseError("trace", number, line, f"{key} does not fit 64 bits")
        if kind != "hex" and not -(1 << 63) <= parsed < 1 << 63:
            raise CaptureParseError("trace", number, line, f"{key} does not fit 64 bits")
        row[key] = parsed
    missing = [f for f in fields if f != "call_site" and f != "bytes_alloc"
               and f != "gfp_flags" and row[f] is None]
    if missing:
        raise CaptureParseError("trace", number, line,
                                f"{match['event']} event without {', '.join(missing)}")
    return row


def percpu_events(trace: pd.DataFrame) -> pd.DataFrame:
    """Only the percpu:* events of a parsed trace, in buffer order.

    For a replay: `trace_event=` on the kernel command line enables the events only
    once tracing is initialised, after setup_per_cpu_areas(), so the first
    allocations of the first chunk are not in the trace (in the shipped captures its
    first traced offset is 5480-5512 while the dynamic area starts at offset 3160).
    The buffer holds events of all CPUs merged in timestamp order."""
    return trace[trace["event"].isin(PERCPU_EVENT_FIELDS)].reset_index(drop=True)


# --- the model against the capture ----------------------------------------------------

def _yes(facts: dict[str, Any], key: str) -> bool:
    return facts.get(key) in ("y", "m") if key != "CONFIG_KVM" else facts.get(key) == "y"


def derive_config(bundle: CaptureBundle) -> KernelConfig:
    """The `KernelConfig` of the captured kernel: page size, VA_BITS, NR_CPUS, KASAN and
    the fixmap options from the package's config facts, the kernel version from
    `uname -r`, and `vabits_actual` from VMCOREINFO's TCR_EL1_T1SZ (64 - T1SZ) when the
    capture has it (else VA_BITS)."""
    facts = bundle.meta.get("config") or {}
    missing = [k for k in ("CONFIG_ARM64_VA_BITS", "CONFIG_NR_CPUS") if not facts.get(k)]
    if missing:
        raise ValueError(f"capture {bundle.name!r} lacks the config facts {missing}; "
                         "capture again with the kernel's config file")
    page_size = next((size for size, key in ((4096, "CONFIG_ARM64_4K_PAGES"),
                                             (16384, "CONFIG_ARM64_16K_PAGES"),
                                             (65536, "CONFIG_ARM64_64K_PAGES"))
                      if facts.get(key) == "y"), None)
    if page_size is None:
        raise ValueError(f"capture {bundle.name!r}: no CONFIG_ARM64_*K_PAGES=y in its config")
    kasan = ("generic" if facts.get("CONFIG_KASAN_GENERIC") == "y" else
             "sw-tags" if facts.get("CONFIG_KASAN_SW_TAGS") == "y" else "none")
    vabits_actual = None
    if "vmcoreinfo" in bundle.texts:
        vabits_actual = vmcoreinfo_numbers(parse_vmcoreinfo(bundle.texts["vmcoreinfo"])).get(
            "vabits_actual")
    version = bundle.meta.get("kernel_version") or kernel_version_from_release(
        str(bundle.meta.get("kernel_release", "")))
    return KernelConfig(
        page_size=page_size, va_bits=int(facts["CONFIG_ARM64_VA_BITS"]),
        vabits_actual=vabits_actual, kasan=kasan, nr_cpus=int(facts["CONFIG_NR_CPUS"]),
        kvm=_yes(facts, "CONFIG_KVM"), kpti=_yes(facts, "CONFIG_UNMAP_KERNEL_AT_EL0"),
        ghes=_yes(facts, "CONFIG_ACPI_APEI_GHES"), sdei=_yes(facts, "CONFIG_ARM_SDE_INTERFACE"),
        relocatable=_yes(facts, "CONFIG_RELOCATABLE"), kernel=version)


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


def layout_comparison(bundle: CaptureBundle, layout: Layout | None = None) -> pd.DataFrame:
    """Marker by marker and symbol by symbol: the model's value, the real one, equal or not.

    Sources, where the capture has them:
    - vmcoreinfo: the NUMBER(...) layout entries and PAGESIZE, exact kernel values;
    - ptdump: each `---[ label ]---` marker at the address the walk crossed it; the
      walk starts at _PAGE_OFFSET(vabits_actual) (ptdump_init's base_addr), so the
      model's value of a marker below that is the walk start;
    - trace + kernel log: where the first dynamic chunk ends (`first_dynamic_chunk_end`).
    Columns: source, item, model, real, match, note.
    """
    layout = layout or compute_layout(derive_config(bundle))
    sym = layout.symbols
    rows: list[dict[str, Any]] = []

    def add(source: str, item: str, model: int | None, real: int | None, note: str = "") -> None:
        rows.append({"source": source, "item": item, "model": model, "real": real,
                     "match": model is not None and model == real, "note": note})

    if "vmcoreinfo" in bundle.texts:
        frame = parse_vmcoreinfo(bundle.texts["vmcoreinfo"])
        numbers = vmcoreinfo_numbers(frame)
        for name, symbol in VMCOREINFO_SYMBOLS:
            if name in numbers:
                note = "64 - NUMBER(TCR_EL1_T1SZ)" if name == "vabits_actual" else ""
                add("vmcoreinfo", name, sym[symbol], numbers[name], note)
        pagesize = frame[frame["kind"] == "PAGESIZE"]["number"]
        if len(pagesize):
            add("vmcoreinfo", "PAGESIZE", sym["PAGE_SIZE"], int(pagesize.iloc[0]))
    if "ptdump" in bundle.texts:
        real = ptdump_markers(bundle.texts["ptdump"])
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
    first_end = first_dynamic_chunk_end(bundle)
    if first_end is not None:
        add("trace", "first dynamic chunk end", sym["VMALLOC_END"], first_end,
            "first percpu_create_chunk base_addr + nr_units * unit_size")
    frame = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    frame["match"] = frame["match"].astype(bool)
    return frame


def first_dynamic_chunk_end(bundle: CaptureBundle) -> int | None:
    """End of the first dynamic chunk's vm area: the first `percpu_create_chunk`
    base_addr plus the group's nr_units * unit_size (kernel log), or None without them.

    pcpu_create_chunk() calls pcpu_get_vm_areas(), which searches vmalloc downwards
    from VMALLOC_END (aligned down to the atom size); the first chunk finds the top
    free, so with one unit group this end is VMALLOC_END itself. (chunk->base_addr is
    the area's start minus the group's offset, 0 for a single group.)
    """
    if "trace" not in bundle.texts or "dmesg" not in bundle.texts:
        return None
    first = percpu_first_chunk(parse_dmesg(bundle.texts["dmesg"]))
    trace = parse_trace(bundle.texts["trace"])
    created = trace[trace["event"] == "percpu_create_chunk"]
    if first is None or first.unit_size is None or len(first.groups) != 1 or not len(created):
        return None
    return int(created["base_addr"].iloc[0]) + first.nr_units * first.unit_size


def first_chunk_comparison(bundle: CaptureBundle) -> pd.DataFrame:
    """The allocator model's first chunk (`allocator.build_alloc_info`, i.e.
    pcpu_build_alloc_info()) against the kernel log, field by field and line by line.

    The model takes the one number it cannot compute, the kernel's static percpu size
    (`s` in the log), and the possible CPUs (the units the log lists, one NUMA node);
    everything else (reserved, dynamic and unit size, pages per CPU, allocation size,
    groups, and the exact `percpu:` / `pcpu-alloc:` lines) is the model's.
    Columns: COMPARISON_COLUMNS (source "dmesg"); line rows hold the texts.
    """
    from ..percpu import PercpuBuild, boot_lines, build_alloc_info

    if "dmesg" not in bundle.texts:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    dmesg = parse_dmesg(bundle.texts["dmesg"])
    info = percpu_first_chunk(dmesg)
    if info is None or info.kind != "Embedded" or len(info.groups) != 1:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    facts = bundle.meta.get("config") or {}
    page_size = derive_config(bundle).page_size
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
    real_lines = [m.rstrip() for m in dmesg["message"]
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

    @property
    def agreed(self) -> int:
        return int(self.layout_rows["match"].sum())

    @property
    def disagreements(self) -> pd.DataFrame:
        return self.layout_rows[~self.layout_rows["match"]]

    def __repr__(self) -> str:
        return (f"CaptureComparison({self.bundle_name!r}, {self.config.label()}, "
                f"{self.agreed}/{len(self.layout_rows)} layout values agree)")


def compare(bundle: CaptureBundle) -> CaptureComparison:
    """Hold the model against a capture: derive the KernelConfig, compute the layout of
    that kernel's era, compare every value the capture shows (`layout_comparison`), and
    compute what RFC patch 02/11 would make of the same configuration.

    With a trace and the percpu boot lines, the trace's percpu events are replayed
    through the allocator model (`allocator.replay_trace`), and with percpu_stats the
    model's final state is compared with the kernel's (`stats_comparison`)."""
    cfg = derive_config(bundle)
    layout = compute_layout(cfg)
    first = (percpu_first_chunk(parse_dmesg(bundle.texts["dmesg"]))
             if "dmesg" in bundle.texts else None)
    events = percpu_events(parse_trace(bundle.texts["trace"])) if "trace" in bundle.texts \
        else None
    rfc: Layout | None = None
    rfc_error: str | None = None
    try:
        rfc = compute_layout(cfg.replace(local_percpu=True))
    except ValueError as exc:
        rfc_error = str(exc)
    replay: TraceReplay | None = None
    stats_rows: pd.DataFrame | None = None
    if events is not None and first is not None and len(events):
        ai = build_alloc_info(first.static_size, nr_cpus=first.nr_units,
                              page_size=cfg.page_size, reserved_size=first.reserved_size,
                              dyn_size=first.dyn_size, atom_size=first.atom_size)
        replay = replay_trace(events, ai, cfg)
        if "percpu_stats" in bundle.texts:
            stats_rows = stats_comparison(replay, parse_percpu_stats(bundle.texts["percpu_stats"]))
    return CaptureComparison(bundle.name, cfg, layout, layout_comparison(bundle, layout),
                             first, events, rfc, rfc_error, first_chunk_comparison(bundle),
                             replay, stats_rows)


# Fields of percpu_stats that count or describe allocations the trace cannot show: those
# made before tracing started (first chunk) and after the capture turned tracing off (the
# processes that read the files, e.g. mm_init()'s counters of the reader itself).
_UNTRACED_NOTE = ("includes allocations the trace does not show (before tracing started, "
                  "after it was turned off)")


def stats_comparison(replay: TraceReplay, real: pd.DataFrame) -> pd.DataFrame:
    """The model's percpu_stats after the replay against the kernel's, field by field
    (columns: section, chunk, key, model, real, match). Chunks are compared in the order
    the kernel lists them (reserved, then by slot)."""
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
    frame.loc[~frame["match"], "note"] = _UNTRACED_NOTE
    return frame


def format_comparison(result: CaptureComparison) -> str:
    """A plain-text report of `compare()` (the CLI prints this)."""
    cfg = result.config
    lines = [f"capture {result.bundle_name}: arm64 kernel {cfg.kernel}, {cfg.label()}, "
             f"NR_CPUS={cfg.nr_cpus}", ""]
    lines.append(f"  {'source':<12}{'item':<32}{'model':<20}{'real':<20}match")
    for row in result.layout_rows.itertuples():
        lines.append(f"  {row.source:<12}{row.item:<32}{format_value(row.model):<20}"
                     f"{format_value(row.real):<20}{'yes' if row.match else 'NO'}"
                     + (f"  ({row.note})" if row.note else ""))
    lines.append("")
    lines.append(f"{result.agreed} of {len(result.layout_rows)} values agree.")
    if result.first_chunk:
        fc = result.first_chunk
        lines.append(f"First chunk (kernel log): {fc.kind} {fc.pages_per_cpu} pages/cpu, "
                     f"static {fc.static_size}, reserved {fc.reserved_size}, dynamic "
                     f"{fc.dyn_size}, unit {fc.unit_size}, {fc.nr_cpus} CPUs in "
                     f"{len(fc.groups)} group(s).")
    rows = result.first_chunk_rows
    if rows is not None and len(rows):
        agree = int(rows["match"].sum())
        lines.append(f"Allocator model's first chunk vs the kernel log: {agree} of {len(rows)} "
                     "fields and lines agree.")
        for row in rows[~rows["match"]].itertuples():
            lines.append(f"  {row.item}: model {row.model!r}, real {row.real!r}")
    if result.events is not None:
        counts = result.events["event"].value_counts()
        lines.append("Percpu trace events: " + ", ".join(
            f"{n} {name.removeprefix('percpu_')}" for name, n in counts.items()) + ".")
    if result.replay is not None:
        r = result.replay
        lines.append(f"Allocator replay: {r.allocs_matched} of {r.allocs} allocations and "
                     f"{r.frees_matched} of {r.frees} frees at the kernel's chunk and offset; "
                     f"chunks created {len(r.creates_model)} (kernel {len(r.creates_real)}), "
                     f"destroyed {len(r.destroys_model)} (kernel {len(r.destroys_real)})"
                     + ("; every decision agrees." if r.all_matched else "."))
        if r.first_disagreement:
            lines.append(f"  first disagreement: trace line {r.first_disagreement.get('line')}")
        lines += [f"  assumed: {a}" for a in r.assumptions]
    if result.stats_rows is not None:
        s = result.stats_rows
        lines.append(f"percpu_stats after the replay: {int(s['match'].sum())} of {len(s)} "
                     "fields agree; differing:")
        for row in s[~s["match"]].itertuples():
            where = "" if row.chunk is None or pd.isna(row.chunk) else f" {row.chunk}"
            lines.append(f"  {row.section}{where} {row.key}: model {row.model}, real {row.real}")
        if (~s["match"]).any():
            lines.append(f"  (each {_UNTRACED_NOTE})")
    if result.rfc_layout is not None:
        problems = result.rfc_layout.problems
        lines.append("RFC patch 02/11 on this configuration: "
                     + ("the layout is sane." if not problems else "BROKEN:"))
        lines += [f"  - [{p.code}] {p.message}" for p in problems]
    elif result.rfc_error:
        lines.append(f"RFC patch 02/11 on this configuration: not applicable: {result.rfc_error}")
    return "\n".join(lines)


def format_value(value: Any) -> str:
    """An address as 0x + 16 hex digits, a small number (bits, page size) in decimal."""
    if value is None or pd.isna(value):
        return "-"
    value = int(value)
    return fmt_addr(value) if value > 1 << 20 else str(value)
