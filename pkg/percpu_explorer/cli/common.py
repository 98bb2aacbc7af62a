"""What every subcommand shares: the parser with one-line errors, the kernel
configuration options and the `KernelConfig` they make, output formats and the
argument types that check each value at the boundary.

An argument type raises `argparse.ArgumentTypeError` with the value and what is valid;
argparse adds the option (`argument --nr-cpus: ...`), `Parser.error` prints the one
line and the command exits with status 2. Rules that tie options together are the
model's (`KernelConfig`); `config_from_args` names the option its error came from.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from ..errors import InputError, one_line, shown
from ..kernel import (
    DEFAULT_KERNEL,
    DEFAULT_UNIT_SIZE,
    KASAN_MODES,
    NR_CPUS_RANGE,
    PAGE_SIZE_NAMES,
    PAGE_SIZES,
    SIZE_MAX,
    SIZE_SYNTAX,
    KernelConfig,
    parse_kernel_version,
    parse_size,
)

PROG = "percpu-explorer"
# struct pcpu_chunk (mm/percpu-internal.h) counts a unit's bytes in an int.
INT_MAX = (1 << 31) - 1

# The output formats of a command that prints a table.
TABLE_FORMATS = ("table", "csv", "json")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise SystemExit(fail(message))

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> object:
        # `--cpu=--` hands argparse the value "--", which it strips, leaving an empty
        # list instead of a value (CPython 3.11): refuse it like any missing value.
        if action.option_strings and action.nargs is None and arg_strings == ["--"]:
            self.error(f"argument {'/'.join(action.option_strings)}: expected one argument, "
                       "not '--'")
        return super()._get_values(action, arg_strings)


def fail(message: str) -> int:
    """Print `percpu-explorer: error: message` on stderr, as one line; returns exit status 2."""
    write(sys.stderr, f"{PROG}: error: {one_line(message)}")
    return 2


def write(stream: object, text: str) -> None:
    """`print(text)` that never fails on a character the stream cannot encode (a file
    name from the command line may hold undecodable bytes): those are escaped."""
    try:
        print(text, file=stream)  # type: ignore[arg-type]
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "utf-8"
        print(text.encode(encoding, "backslashreplace").decode(encoding), file=stream)  # type: ignore[arg-type]


# --- argument types: each value checked where it enters ------------------------------

def _refuse(text: str, why: str) -> NoReturn:
    raise argparse.ArgumentTypeError(f"{shown(text)} {why}")


def int_in(low: int, high: int, what: str) -> Callable[[str], int]:
    """A decimal integer from low to high; `what` says what the number is."""
    def parse(text: str) -> int:
        stripped = text.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", stripped):
            _refuse(text, f"is not a whole number; use {low}..{high} ({what})")
        digits = stripped.lstrip("+-")
        value = int(stripped) if len(digits) <= 30 else (high + 1 if stripped[0] != "-"
                                                          else low - 1)
        if not low <= value <= high:
            _refuse(text, f"is outside {low}..{high} ({what})")
        return value
    parse.__name__ = "integer"
    return parse


def float_in(low: float, high: float, what: str, *,
             low_open: bool = False) -> Callable[[str], float]:
    """A finite decimal number in [low, high] (or (low, high] with low_open)."""
    def parse(text: str) -> float:
        try:
            value = float(text.strip()) if len(text) <= 60 else math.nan
        except ValueError:
            value = math.nan
        if not math.isfinite(value) and not math.isnan(value):
            _refuse(text, f"is not finite; use a number in {_span(low, high, low_open)} "
                    f"({what})")
        if math.isnan(value):
            _refuse(text, f"is not a number; use one in {_span(low, high, low_open)} ({what})")
        if value < low or value > high or (low_open and value == low):
            _refuse(text, f"is outside {_span(low, high, low_open)} ({what})")
        return value
    parse.__name__ = "number"
    return parse


def _span(low: float, high: float, low_open: bool) -> str:
    return f"{'(' if low_open else '['}{low:g}, {high:g}]"


def size_in(low: int, high: int, what: str) -> Callable[[str], int]:
    """A size in the one size syntax (`parse_size`: 4096, 4K, 16KB, 64KiB, 2M), low..high."""
    def parse(text: str) -> int:
        if text.strip().startswith("-"):
            _refuse(text, f"is negative; a size is {low}..{high} bytes ({what})")
        try:
            value = parse_size(text)
        except InputError:
            _refuse(text, f"is not a size; write {SIZE_SYNTAX}")
        if not low <= value <= high:
            _refuse(text, f"is {value} bytes, outside {low}..{high} ({what})")
        return value
    parse.__name__ = "size"
    return parse


def one_of(choices: Sequence[str], what: str = "") -> Callable[[str], str]:
    """One of `choices` (exact text)."""
    def parse(text: str) -> str:
        if text not in choices:
            _refuse(text, f"is unknown; choose one of {', '.join(choices)}"
                    + (f" ({what})" if what else ""))
        return text
    parse.__name__ = "choice"
    return parse


def list_of(choices: Sequence[str]) -> Callable[[str], str]:
    """A comma-separated selection of `choices`, e.g. `today,local` (returned as given)."""
    def parse(text: str) -> str:
        items = [item.strip() for item in text.split(",")]
        if any(item not in choices for item in items):
            _refuse(text, f"is not a comma-separated list of {', '.join(choices)}")
        return text
    parse.__name__ = "list"
    return parse


def matching(pattern: str, what: str) -> Callable[[str], str]:
    """Text that matches `pattern` whole (it goes to another program's command line)."""
    compiled = re.compile(pattern)

    def parse(text: str) -> str:
        if not compiled.fullmatch(text):
            _refuse(text, f"is not {what}")
        return text
    parse.__name__ = "text"
    return parse


def path_text(option: str) -> Callable[[str], str]:
    """A file or folder name: not empty, no NUL (which no file name holds)."""
    def parse(text: str) -> str:
        if not text.strip() or "\0" in text:
            _refuse(text, f"is not a usable path for {option}")
        return text
    parse.__name__ = "path"
    return parse


def kernel_version(text: str) -> str:
    """A modelled kernel version (`parse_kernel_version`), as text."""
    try:
        return str(parse_kernel_version(text))
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def page_size(text: str) -> int:
    """An arm64 granule in the size syntax: 4K, 16K or 64K (or its bytes)."""
    names = ", ".join(PAGE_SIZE_NAMES[p] for p in PAGE_SIZES)
    try:
        value = parse_size(text)
    except InputError:
        _refuse(text, f"is not a size; choose one of {names}")
    if value not in PAGE_SIZES:
        _refuse(text, f"is not an arm64 granule; choose one of {names}")
    return value


NR_CPUS = int_in(*NR_CPUS_RANGE, "CONFIG_NR_CPUS, arch/arm64/Kconfig")
# Every VA size some page size offers in some modelled kernel; KernelConfig checks the pair.
VA_BITS = int_in(36, 52, "CONFIG_ARM64_VA_BITS: 36, 39, 42, 47, 48 or 52 by page size")


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """The options that make a KernelConfig (shared by every subcommand)."""
    g = parser.add_argument_group("kernel configuration")
    g.add_argument("--page-size", type=page_size, default="4K",
                   help="4K, 16K or 64K (default 4K)")
    g.add_argument("--va-bits", type=VA_BITS, default=48,
                   help="CONFIG_ARM64_VA_BITS (default 48)")
    g.add_argument("--vabits-actual", type=VA_BITS, default=None,
                   help="VA bits of the hardware for a 52-bit kernel (default: VA_BITS)")
    g.add_argument("--kasan", type=one_of(KASAN_MODES), default="none",
                   help=f"one of {', '.join(KASAN_MODES)}")
    g.add_argument("--kernel", type=kernel_version, default=DEFAULT_KERNEL,
                   help=f"kernel version, e.g. 6.1, 6.8, 6.12.117 (default {DEFAULT_KERNEL})")
    g.add_argument("--nr-cpus", type=NR_CPUS, default=512,
                   help=f"CONFIG_NR_CPUS, {NR_CPUS_RANGE[0]}..{NR_CPUS_RANGE[1]} (default 512)")
    g.add_argument("--local-percpu", action="store_true",
                   help="apply RFC patch 02/11 (Global and Local Percpu areas)")
    for name, kconfig in (("kvm", "CONFIG_KVM"), ("kpti", "CONFIG_UNMAP_KERNEL_AT_EL0"),
                          ("ghes", "CONFIG_ACPI_APEI_GHES"), ("sdei", "CONFIG_ARM_SDE_INTERFACE"),
                          ("relocatable", "CONFIG_RELOCATABLE")):
        g.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=True,
                       help=f"{kconfig} (fixmap slots; default on)")
    g.add_argument("--btmap-extra-page", action=argparse.BooleanOptionalAction, default=None,
                   help="NR_FIX_BTMAPS = SZ_256K/PAGE_SIZE + 1 (default: follows --kernel)")


# KernelConfig fields and the option that sets each.
OPTION_OF_FIELD = {"page_size": "--page-size", "va_bits": "--va-bits",
                   "vabits_actual": "--vabits-actual", "kasan": "--kasan", "kernel": "--kernel",
                   "nr_cpus": "--nr-cpus", "local_percpu": "--local-percpu"}


def config_from_args(args: argparse.Namespace) -> KernelConfig:
    """The KernelConfig of the options `add_config_options` added; a rule that refuses
    the combination names the option it refused (`argument --va-bits: ...`)."""
    try:
        return _config(args)
    except InputError as exc:
        option = OPTION_OF_FIELD.get(exc.field or "")
        if option is None:
            raise
        raise InputError(f"argument {option}: {exc}", field=exc.field) from None


def _config(args: argparse.Namespace) -> KernelConfig:
    return KernelConfig(
        page_size=args.page_size,
        va_bits=args.va_bits,
        vabits_actual=args.vabits_actual,
        kasan=args.kasan,
        kernel=args.kernel,
        nr_cpus=args.nr_cpus,
        local_percpu=args.local_percpu,
        kvm=args.kvm,
        kpti=args.kpti,
        ghes=args.ghes,
        sdei=args.sdei,
        relocatable=args.relocatable,
        btmap_extra_page=args.btmap_extra_page,
    )


def add_kernel_option(parser: argparse.ArgumentParser) -> None:
    """--kernel alone, for commands that need no whole configuration."""
    parser.add_argument("--kernel", type=kernel_version, default=DEFAULT_KERNEL,
                        help=f"kernel version (default {DEFAULT_KERNEL})")


def add_format(parser: argparse.ArgumentParser, choices: Sequence[str]) -> None:
    """--format, defaulting to the first of `choices` (checked by `check_format`)."""
    parser.add_argument("--format", default=choices[0],
                        help=f"output format: {', '.join(choices)} (default {choices[0]})")


def check_format(value: str, choices: Sequence[str]) -> None:
    """ValueError naming the choices unless `value` is one of them."""
    if value not in choices:
        raise InputError(f"format {shown(value)} is unknown; choose one of {', '.join(choices)}",
                         field="format")


# A first-chunk unit per CPU: at least one page, at most what struct pcpu_chunk can count.
UNIT_SIZE = size_in(1, INT_MAX, "first-chunk unit per CPU; struct pcpu_chunk counts its bytes "
                    "in an int")


def add_unit_size_option(parser: argparse.ArgumentParser) -> None:
    """--unit-size: the first chunk's unit per CPU (read by `unit_size`)."""
    default = f"{DEFAULT_UNIT_SIZE >> 10}K"
    parser.add_argument("--unit-size", type=UNIT_SIZE, default=default,
                        help=f"first-chunk unit per CPU, e.g. 128K or 2M (default {default})")


def unit_size(value: int | str) -> int:
    """A positive unit size such as `128K` (--unit-size, already parsed by argparse)."""
    size = parse_size(value, name="--unit-size")
    if not 1 <= size <= INT_MAX:
        raise InputError(f"--unit-size {shown(value)} is outside 1..{INT_MAX} bytes")
    return size


__all__ = ["INT_MAX", "NR_CPUS", "PROG", "SIZE_MAX", "Parser", "config_from_args", "fail",
           "float_in", "int_in", "kernel_version", "list_of", "matching", "one_of", "page_size",
           "path_text",
           "size_in", "unit_size", "write"]
