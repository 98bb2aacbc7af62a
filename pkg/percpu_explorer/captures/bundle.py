"""Capture bundles: the raw texts of one real-kernel capture and the facts about the
kernel that made them, and the `KernelConfig` those facts describe.

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

Bundles: `CaptureBundle`, `save_bundle`, `load_bundle`. Config facts: `config_facts`,
`preemption_model`, `kernel_version_from_release`, `derive_config`.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, one_line, shown
from ..kernel import KernelConfig, available_memory, check_memory, format_size
from .parsers import parse_vmcoreinfo, vmcoreinfo_numbers

SOURCES: tuple[str, ...] = (
    "uname", "cmdline", "cpuinfo", "vmcoreinfo", "vmallocinfo", "ptdump",
    "percpu_stats", "meminfo", "trace", "dmesg",
)



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
    """Read a bundle folder written by `save_bundle`. InputError (one line, naming the
    file) for a folder that is not a bundle, a meta.json that is not a JSON object, a
    .gz that is not gzip, or a text too large for this machine's memory."""
    folder = Path(folder)
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        raise InputError(f"{folder} is not a capture bundle: no meta.json (capture one with "
                         "`percpu-explorer capture`, or use a folder of data/captures)")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"{meta_file}: not a readable JSON file: "
                         f"{one_line(str(exc)) or type(exc).__name__}") from None
    if not isinstance(meta, dict):
        raise InputError(f"{meta_file}: holds a JSON {type(meta).__name__}, not the object of "
                         "capture facts (kernel_release, config, ...)")
    meta.setdefault("name", folder.name)
    texts: dict[str, str] = {}
    try:
        paths = sorted(folder.iterdir())
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the bundle: {one_line(str(exc))}") from None
    for path in paths:
        if path.name.endswith(".txt.gz"):
            texts[path.name.removesuffix(".txt.gz")] = _read_gzip_text(path)
        elif path.name.endswith(".txt"):
            texts[path.name.removesuffix(".txt")] = _read_text(path)
    return CaptureBundle(meta=meta, texts=texts)


# A capture text is a few MB (the trace of a boot is the largest); memory bounds the rest.
_TEXT_FACTOR = 12  # bytes of memory per byte of text, with the parsed frames


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        check_memory(size * _TEXT_FACTOR, f"reading {path}", "trim the capture text")
        return path.read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {one_line(str(exc))}") from None


def _read_gzip_text(path: Path) -> str:
    """A .txt.gz text, decompressed in pieces so that a small file that expands beyond
    this machine's memory is refused before it is."""
    free = available_memory()
    limit = (free // _TEXT_FACTOR) if free is not None else 1 << 30
    pieces: list[bytes] = []
    total = 0
    try:
        with gzip.open(path, "rb") as f:
            while piece := f.read(1 << 20):
                total += len(piece)
                if total > limit:
                    raise InputError(f"{path}: decompresses to more than "
                                     f"{format_size(limit)}, more than this machine can "
                                     "parse; trim the capture text")
                pieces.append(piece)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: not a readable gzip file: "
                         f"{one_line(str(exc)) or type(exc).__name__}") from None
    return b"".join(pieces).decode("utf-8", "replace")


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
        raise InputError(f"kernel release {shown(release)} does not start with a version "
                         "number (as `uname -r` prints it, e.g. 6.12.117+deb12-arm64)")
    major, minor, sub = match.groups()
    return f"{major}.{minor}" + (f".{sub}" if sub else "")


# --- the configuration of the captured kernel ------------------------------------------

def _yes(facts: dict[str, Any], key: str) -> bool:
    return facts.get(key) in ("y", "m") if key != "CONFIG_KVM" else facts.get(key) == "y"


def derive_config(bundle: CaptureBundle,
                  vmcoreinfo: Mapping[str, int] | None = None) -> KernelConfig:
    """The `KernelConfig` of the captured kernel: page size, VA_BITS, NR_CPUS, KASAN and
    the fixmap options from the package's config facts, the kernel version from
    `uname -r`, and `vabits_actual` from VMCOREINFO's TCR_EL1_T1SZ (64 - T1SZ) when the
    capture has it (else VA_BITS).

    `vmcoreinfo` is the note's numbers as `vmcoreinfo_numbers` gives them, when the
    caller has parsed it already; without it the bundle's text is parsed here."""
    facts = bundle.meta.get("config") or {}
    if not isinstance(facts, dict):
        raise InputError(f"capture {bundle.name!r}: meta.json's config is a "
                         f"{type(facts).__name__}, not the object of CONFIG_ facts")
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
    if vmcoreinfo is None and "vmcoreinfo" in bundle.texts:
        vmcoreinfo = vmcoreinfo_numbers(parse_vmcoreinfo(bundle.texts["vmcoreinfo"]))
    vabits_actual = vmcoreinfo.get("vabits_actual") if vmcoreinfo is not None else None
    version = bundle.meta.get("kernel_version") or kernel_version_from_release(
        str(bundle.meta.get("kernel_release", "")))
    numbers = {}
    for key in ("CONFIG_ARM64_VA_BITS", "CONFIG_NR_CPUS"):
        text = str(facts[key]).strip()
        if not text.isdigit() or len(text) > 6:
            raise InputError(f"capture {bundle.name!r}: meta.json's config {key} is "
                             f"{shown(facts[key])}, not a number")
        numbers[key] = int(text)
    return KernelConfig(
        page_size=page_size, va_bits=numbers["CONFIG_ARM64_VA_BITS"],
        vabits_actual=vabits_actual, kasan=kasan, nr_cpus=numbers["CONFIG_NR_CPUS"],
        kvm=_yes(facts, "CONFIG_KVM"), kpti=_yes(facts, "CONFIG_UNMAP_KERNEL_AT_EL0"),
        ghes=_yes(facts, "CONFIG_ACPI_APEI_GHES"), sdei=_yes(facts, "CONFIG_ARM_SDE_INTERFACE"),
        relocatable=_yes(facts, "CONFIG_RELOCATABLE"), kernel=version)
