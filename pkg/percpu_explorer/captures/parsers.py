"""The texts a running arm64 kernel prints, each parsed into a DataFrame (or a small
dataclass).

Parsers are tolerant of what real files contain (headers, blank lines, unknown
attributes and events, and a last line cut short: a line without its newline is left
out, never misread) and strict about what they cannot read: they raise
`CaptureParseError` (a `ValueError`) naming the source and the 1-based line number.

- ptdump (/sys/kernel/debug/kernel_page_tables): `parse_ptdump`, `ptdump_markers`;
- /proc/vmallocinfo: `parse_vmallocinfo`;
- the VMCOREINFO note: `parse_vmcoreinfo`, `vmcoreinfo_numbers`;
- the kernel log: `parse_dmesg`, `percpu_first_chunk`, `memory_lines`;
- debugfs percpu_stats: `parse_percpu_stats`, `percpu_stats_section`;
- /sys/kernel/tracing/trace: `parse_trace`, `percpu_events`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..errors import InputError
from ..kernel import UNIT_SHIFT


class CaptureParseError(InputError):
    """A line a parser cannot read: `source`, 1-based `line` number and its `text`."""

    def __init__(self, source: str, line: int, text: str, why: str) -> None:
        self.source = source
        self.line = line
        self.text = text
        self.why = why
        super().__init__(f"{source} line {line}: {why}: {text[:120]!r}")


# --- shared parsing helpers ------------------------------------------------------------

def _lines(text: str) -> list[str]:
    """The complete lines of a text: a last line without its newline may have been cut
    anywhere (a console or file read short), so it is left out rather than misread."""
    return text.replace("\r\n", "\n").split("\n")[:-1]


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
            size = int(match.group("size")) << UNIT_SHIFT[match.group("unit")]
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
        rows.append(_trace_row(number, line))
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
