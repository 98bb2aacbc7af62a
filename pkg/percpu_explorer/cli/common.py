"""What every subcommand shares: the parser with one-line errors, the kernel
configuration options and the `KernelConfig` they make, output formats and the
argument types of sizes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from ..kernel import DEFAULT_KERNEL, DEFAULT_UNIT_SIZE, KASAN_MODES, KernelConfig, parse_size

PROG = "percpu-explorer"

# The output formats of a command that prints a table.
TABLE_FORMATS = ("table", "csv", "json")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise SystemExit(fail(message))


def fail(message: str) -> int:
    """Print `percpu-explorer: error: message` on stderr; returns exit status 2."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """The options that make a KernelConfig (shared by every subcommand)."""
    g = parser.add_argument_group("kernel configuration")
    g.add_argument("--page-size", default="4K", help="4K, 16K or 64K (default 4K)")
    g.add_argument("--va-bits", type=int, default=48, help="CONFIG_ARM64_VA_BITS (default 48)")
    g.add_argument("--vabits-actual", type=int, default=None,
                   help="VA bits of the hardware for a 52-bit kernel (default: VA_BITS)")
    g.add_argument("--kasan", default="none", help=f"one of {', '.join(KASAN_MODES)}")
    g.add_argument("--kernel", default=DEFAULT_KERNEL,
                   help=f"kernel version, e.g. 6.1, 6.8, 6.12.117 (default {DEFAULT_KERNEL})")
    g.add_argument("--nr-cpus", type=int, default=512, help="CONFIG_NR_CPUS (default 512)")
    g.add_argument("--local-percpu", action="store_true",
                   help="apply RFC patch 02/11 (Global and Local Percpu areas)")
    for name, kconfig in (("kvm", "CONFIG_KVM"), ("kpti", "CONFIG_UNMAP_KERNEL_AT_EL0"),
                          ("ghes", "CONFIG_ACPI_APEI_GHES"), ("sdei", "CONFIG_ARM_SDE_INTERFACE"),
                          ("relocatable", "CONFIG_RELOCATABLE")):
        g.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=True,
                       help=f"{kconfig} (fixmap slots; default on)")
    g.add_argument("--btmap-extra-page", action=argparse.BooleanOptionalAction, default=None,
                   help="NR_FIX_BTMAPS = SZ_256K/PAGE_SIZE + 1 (default: follows --kernel)")


def config_from_args(args: argparse.Namespace) -> KernelConfig:
    """The KernelConfig of the options `add_config_options` added."""
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
    parser.add_argument("--kernel", default=DEFAULT_KERNEL,
                        help=f"kernel version (default {DEFAULT_KERNEL})")


def add_format(parser: argparse.ArgumentParser, choices: Sequence[str]) -> None:
    """--format, defaulting to the first of `choices` (checked by `check_format`)."""
    parser.add_argument("--format", default=choices[0],
                        help=f"output format: {', '.join(choices)} (default {choices[0]})")


def check_format(value: str, choices: Sequence[str]) -> None:
    """ValueError naming the choices unless `value` is one of them."""
    if value not in choices:
        raise ValueError(f"format {value!r} is unknown; choose one of {', '.join(choices)}")


def add_unit_size_option(parser: argparse.ArgumentParser) -> None:
    """--unit-size: the first chunk's unit per CPU (read by `unit_size`)."""
    default = f"{DEFAULT_UNIT_SIZE >> 10}K"
    parser.add_argument("--unit-size", default=default,
                        help=f"first-chunk unit per CPU (default {default})")


def unit_size(text: str) -> int:
    """A positive size such as `128K` (--unit-size)."""
    size = parse_size(text)
    if size <= 0:
        raise ValueError(f"unit size {text!r} must be positive, e.g. 128K")
    return size
