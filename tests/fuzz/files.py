"""Generated and mutated input files: request histories, workloads, core profiles and
capture bundles, written into a folder for one fuzz case.

Every file starts from a real one (data/workloads, data/captures, a valid request
history or core profile) and is then mutated line by line (lines dropped, doubled or
swapped, numbers pushed past their limits, cells replaced by odd text), byte by byte
(truncated, binary inserted, CRLF line ends, a byte-order mark) or replaced whole (a JSON
list where an object belongs, gzip that is not gzip, an empty file, a folder).
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

from hypothesis import strategies as st

from .strategies import around, weird_text

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
BUNDLE = DATA / "captures" / "debian-6.12.117-max-smp4"
TRACE_EVENTS = 150  # the trace is cut to its header and first events: compare stays quick

REQUESTS = ("op,id,size,align,reserved,atomic\nalloc,1,8,8,0,0\nalloc,2,64,64,0,0\n"
            "alloc,3,4096,4096,1,0\nalloc,4,16,8,0,1\nfree,1,,,,\nalloc,5,30000,4,0,0\n"
            "free,2,,,,\n")
CORE = {"name": "mine", "base": "neoverse-v2", "costs": {"mrs_tpidr": 20, "load": 4.5},
        "sources": {"load": "measured"}, "resched_cost": 2500, "resched_probability": 0.001,
        "description": "a user profile"}
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")


def _number_text() -> st.SearchStrategy[str]:
    return st.one_of(around(4096, 2**31, 2**63, 2**64).map(str),
                     st.sampled_from(["-1", "0", "1e400", "nan", "0x" + "f" * 17, "", "1.5"]))


@st.composite
def mutated_text(draw: st.DrawFn, text: str, *, max_edits: int = 4) -> str:
    """`text` after a few line edits, number edits and byte-level damage."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(0, max_edits))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["drop", "double", "swap", "number", "cell", "text",
                                     "blank", "cut"]))
        if edit == "drop":
            del lines[i]
        elif edit == "double":
            lines.insert(i, lines[i])
        elif edit == "swap" and len(lines) > 1:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif edit == "number":
            numbers = list(_NUMBER.finditer(lines[i]))
            if numbers:
                m = numbers[draw(st.integers(0, len(numbers) - 1))]
                lines[i] = lines[i][:m.start()] + draw(_number_text()) + lines[i][m.end():]
        elif edit == "cell":
            cells = lines[i].split(",")
            k = draw(st.integers(0, len(cells)))
            value = draw(st.one_of(weird_text, _number_text()))
            if k == len(cells):
                cells.append(value)
            else:
                cells[k] = value
            lines[i] = ",".join(cells)
        elif edit == "text":
            lines[i] = draw(weird_text)
        elif edit == "blank":
            lines.insert(i, "")
        elif edit == "cut":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
    out = "\n".join(lines) + ("\n" if draw(st.booleans()) else "")
    return out


@st.composite
def damaged_bytes(draw: st.DrawFn, text: str) -> bytes:
    """`text` as bytes, perhaps with CRLF ends, a byte-order mark, binary in it or cut."""
    data = text.encode("utf-8", "surrogateescape")
    if draw(st.integers(0, 3)) == 0:
        data = data.replace(b"\n", b"\r\n")
    if draw(st.integers(0, 5)) == 0:
        data = b"\xef\xbb\xbf" + data
    if draw(st.integers(0, 5)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    if draw(st.integers(0, 5)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data


@st.composite
def text_file(draw: st.DrawFn, base: str) -> bytes:
    """A file's bytes: mostly `base` mutated, sometimes something else altogether."""
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return b""
    if kind == 1:
        return draw(st.binary(max_size=200))
    if kind == 2:
        return gzip.compress(base.encode())
    if kind == 3:
        return b"\x1f\x8b\x08\x00" + draw(st.binary(max_size=40))  # gzip that is not gzip
    return draw(damaged_bytes(draw(mutated_text(base))))


def write_file(folder: Path, name: str, data: bytes | None) -> Path:
    """Write `data` at folder/name; None makes a folder of that name instead."""
    path = folder / name
    if data is None:
        path.mkdir()
    else:
        path.write_bytes(data)
    return path


# --- core profiles -----------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
              st.floats(allow_nan=True, allow_infinity=True), weird_text),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(weird_text, inner, max_size=3)),
    max_leaves=8)


@st.composite
def core_profile_file(draw: st.DrawFn) -> bytes:
    """A core profile's JSON: the valid one with keys changed, any JSON value, or damage."""
    kind = draw(st.integers(0, 9))
    if kind <= 4:
        data = json.loads(json.dumps(CORE))
        for _ in range(draw(st.integers(1, 3))):
            where = draw(st.sampled_from(["top", "costs", "sources"]))
            target = data if where == "top" else data.setdefault(where, {})
            if not isinstance(target, dict):
                continue
            key = draw(st.one_of(st.sampled_from([*sorted(CORE), "load", "alu", "lse_far"]),
                                 weird_text))
            target[key] = draw(json_values)
        return json.dumps(data).encode()
    if kind <= 6:
        return json.dumps(draw(json_values)).encode()
    if kind == 7:
        return b"[" * 100_000  # nesting deeper than any parser's recursion
    return draw(text_file(json.dumps(CORE, indent=1)))


# --- capture bundles ---------------------------------------------------------------------------

def base_bundle_texts() -> dict[str, str]:
    """The real bundle's texts, its trace cut to the header and the first events."""
    texts = {}
    for path in sorted(BUNDLE.iterdir()):
        if path.name.endswith(".txt.gz"):
            texts[path.name.removesuffix(".gz")] = gzip.decompress(path.read_bytes()).decode()
        elif path.name.endswith(".txt") or path.name == "meta.json":
            texts[path.name] = path.read_text()
    lines = texts["trace.txt"].splitlines()
    head = [line for line in lines if line.startswith("#")]
    body = [line for line in lines if not line.startswith("#")][:TRACE_EVENTS]
    texts["trace.txt"] = "\n".join(head + body) + "\n"
    return texts


@st.composite
def bundle_folder_files(draw: st.DrawFn, base: dict[str, str]) -> dict[str, bytes | None]:
    """A bundle's files by name: some mutated, some dropped, some gzip'd or not-gzip."""
    files: dict[str, bytes | None] = {name: text.encode() for name, text in base.items()}
    for name in draw(st.lists(st.sampled_from(sorted(base)), max_size=3, unique=True)):
        action = draw(st.integers(0, 9))
        if action == 0:
            del files[name]
        elif action == 1 and name == "meta.json":
            files[name] = json.dumps(draw(json_values)).encode()
        elif action == 2:
            files[name + ".gz"] = draw(st.one_of(
                st.just(gzip.compress(files.pop(name) or b"")),
                st.binary(max_size=64).map(lambda b: b"\x1f\x8b\x08\x00" + b)))
        elif action == 3 and name == "meta.json":
            meta = json.loads(base[name])
            key = draw(st.sampled_from(["config", "kernel_release", "kernel_version", "name"]))
            meta[key] = draw(json_values)
            files[name] = json.dumps(meta).encode()
        elif action == 4 and name == "dmesg.txt":
            lines = [line for line in base[name].splitlines()
                     if not (draw(st.booleans()) and ("pcpu-alloc" in line
                                                      or "RCU restricting" in line))]
            files[name] = "\n".join(lines).encode()
        else:
            files[name] = draw(damaged_bytes(draw(mutated_text(base[name]))))
    return files


def write_bundle(folder: Path, files: dict[str, bytes | None]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        write_file(folder, name, data)
    return folder


def copy_workloads(folder: Path) -> dict[str, str]:
    """The shipped workload files' texts (CSV) and the parquet file copied into `folder`."""
    shutil.copy(DATA / "workloads" / "mix.parquet", folder / "mix.parquet")
    return {p.name: p.read_text() for p in (DATA / "workloads").glob("*.csv")}
