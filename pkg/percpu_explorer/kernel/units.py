"""Addresses and sizes as the kernel writes them.

Addresses are Python ints masked to 64 bits, so that arithmetic wraps exactly
as unsigned long arithmetic does in C. Sizes print with the binary units of
Documentation/arch/arm64/memory.rst (KB, MB, GB, TB, PB, EB).
"""

from __future__ import annotations

import re

MASK64 = (1 << 64) - 1

SZ_1K = 1 << 10
SZ_8M = 8 << 20
SZ_16M = 16 << 20
SZ_32M = 32 << 20
SZ_128M = 128 << 20
SZ_256M = 256 << 20
SZ_256K = 256 << 10
SZ_1G = 1 << 30
SZ_2M = 2 << 20
SZ_2G = 2 << 30

# The binary units of memory.rst, largest first: the one table for printing and parsing.
BINARY_UNITS: tuple[tuple[str, int], ...] = (
    ("EB", 60), ("PB", 50), ("TB", 40), ("GB", 30), ("MB", 20), ("KB", 10),
)
UNIT_SHIFT: dict[str, int] = {"": 0, **{name[0]: shift for name, shift in BINARY_UNITS}}
# The exclusive end of the last region: one past 0xffffffffffffffff.
TOP_OF_VA = 1 << 64


def u64(value: int) -> int:
    """Reduce an integer to 64 bits, as a C `unsigned long` holds it."""
    return value & MASK64


def neg(value: int) -> int:
    """`-(UL(value))`: the two's complement, as the kernel's `-UL(SZ_1G)`."""
    return (-value) & MASK64


def fmt_addr(value: int) -> str:
    """Format an address as 0x-prefixed 16 hex digits (`0xffff800000000000`)."""
    return f"0x{value & MASK64:016x}"


def parse_addr(text: str | int) -> int:
    """Parse `0xffff800000000000` (or a decimal integer) into a 64-bit address."""
    if isinstance(text, int):
        value = text
    else:
        cleaned = text.strip().replace("_", "").replace("`", "")
        try:
            value = int(cleaned, 0)
        except ValueError:
            try:
                value = int(cleaned, 16)
            except ValueError:
                raise ValueError(
                    f"address {text!r} is not a number; write it as hex like 0xffff800000000000"
                ) from None
    if not 0 <= value <= MASK64:
        raise ValueError(f"address {text!r} does not fit in 64 bits")
    return value


def format_size(nbytes: int) -> str:
    """Size in the style of memory.rst: `2GB`, `124TB`, `~4PB` when not exact.

    The largest unit not above the size is used; a leading `~` marks a rounded
    value, as memory.rst writes "~4PB" (one decimal below 10 units: `~2.5TB`).
    """
    if nbytes < 0:
        return "-" + format_size(-nbytes)
    for unit, shift in BINARY_UNITS:
        if nbytes >= 1 << shift:
            whole, rest = divmod(nbytes, 1 << shift)
            if rest == 0:
                return f"{whole}{unit}"
            value = nbytes / (1 << shift)
            text = f"{value:.1f}".removesuffix(".0") if value < 10 else f"{round(value)}"
            return f"~{text}{unit}"
    return f"{nbytes}B"


_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGTPE]?)(?:i?B)?\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """Parse `4K`, `16K`, `64KB`, `2M` or a plain byte count into bytes."""
    if isinstance(text, int):
        return text
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"size {text!r} is not understood; write it like 4K, 16K, 64K or 4096")
    number, unit = int(match.group(1)), match.group(2).upper()
    shift = UNIT_SHIFT[unit]
    return number << shift


def fmt_end(end: int) -> str:
    """An exclusive end address; TOP_OF_VA (2**64) prints unwrapped as 0x10000000000000000."""
    return f"0x{end:x}" if end == TOP_OF_VA else fmt_addr(end)


def div_round_up(n: int, d: int) -> int:
    """`DIV_ROUND_UP(n, d)` (include/linux/math.h)."""
    return -(-n // d)


def roundup(value: int, step: int) -> int:
    """`roundup(x, y)` (include/linux/math.h): x rounded up to a multiple of y, any y > 0."""
    return -(-value // step) * step


def align_up(value: int, align: int) -> int:
    """`ALIGN(x, a)` for a power-of-two `a` (include/linux/align.h)."""
    return (value + align - 1) & ~(align - 1)


def align_down(value: int, align: int) -> int:
    """`ALIGN_DOWN(x, a)` for a power-of-two `a`, on 64-bit values."""
    return value & ~(align - 1) & MASK64
