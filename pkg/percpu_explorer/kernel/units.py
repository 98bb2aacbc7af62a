"""Addresses and sizes as the kernel writes them.

Addresses are Python ints masked to 64 bits, so that arithmetic wraps exactly
as unsigned long arithmetic does in C. Sizes print with the binary units of
Documentation/arch/arm64/memory.rst (KB, MB, GB, TB, PB, EB).
"""

from __future__ import annotations

import re

from ..errors import InputError, shown

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


def parse_addr(text: str | int, *, name: str = "address") -> int:
    """Parse `0xffff800000000000` (or a decimal integer) into a 64-bit address."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif not isinstance(text, str):
        raise InputError(f"{name} {shown(text)} is not an address; write it as hex like "
                         "0xffff800000000000", field=name)
    else:
        cleaned = text.strip().replace("_", "").replace("`", "")
        value = None
        if re.fullmatch(r"[+-]?(?:0[xX][0-9a-fA-F]+|[0-9a-fA-F]+)", cleaned or "-"):
            digits = cleaned.lstrip("+-")
            decimal = digits.isdigit() and (digits == "0" or not digits.startswith("0"))
            base = 10 if decimal else 16
            if len(digits) <= 40:  # longer ones are out of range anyway
                value = int(cleaned, base)
            else:
                value = 1 << 64
        if value is None:
            raise InputError(f"{name} {shown(text)} is not a number; write it as hex like "
                             "0xffff800000000000", field=name)
    if not 0 <= value <= MASK64:
        raise InputError(f"{name} {shown(text)} does not fit in 64 bits "
                         "(0 to 0xffffffffffffffff)", field=name)
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
# size_t on arm64: every size the kernel takes is below 2**64.
SIZE_MAX = MASK64
SIZE_SYNTAX = "bytes like 4096, or with a binary unit: 4K, 16KB, 64KiB, 2M, 1G"


def parse_size(text: str | int, *, name: str = "size") -> int:
    """Parse `4K`, `16K`, `64KB`, `64KiB`, `2M` or a plain byte count into bytes.

    Units are binary (K = 1024) and case-blind; a size is a size_t, so it is a whole
    number from 0 to 2**64 - 1. Anything else raises InputError naming `name`."""
    if isinstance(text, bool) or not isinstance(text, int | str):
        raise InputError(f"{name} {shown(text)} is not a size; write {SIZE_SYNTAX}", field=name)
    if isinstance(text, int):
        value = text
    else:
        match = _SIZE_RE.match(text)
        if not match:
            raise InputError(f"{name} {shown(text)} is not a size; write {SIZE_SYNTAX}", field=name)
        digits = match.group(1).lstrip("0") or "0"
        # 2**64 has 20 digits: a longer number is out of range (and int() would refuse
        # very long ones with a message of its own).
        value = (int(digits) << UNIT_SHIFT[match.group(2).upper()] if len(digits) <= 20
                 else SIZE_MAX + 1)
    if not 0 <= value <= SIZE_MAX:
        raise InputError(f"{name} {shown(text)} is outside a size_t (0 to 2**64 - 1 bytes)",
                         field=name)
    return value


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
