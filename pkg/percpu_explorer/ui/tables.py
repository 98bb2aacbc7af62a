"""Tables for reading: a copy of a model's DataFrame with addresses in hex and sizes in
memory.rst's binary units. The models' own frames keep exact integers.

Which columns hold addresses and which hold sizes is given (`addresses=`, `sizes=`) or
read from the column names by this convention (case-insensitive, words split at "_"):

  size     a word of the name is one of `SIZE_WORDS`: size, bytes, span, offset
           (size, unit_size, PGDIR_SIZE, free_bytes, mainline_bytes_per_cpu, chunk_span,
           offset_from_base, start_offset); a size may be negative
  address  otherwise, the last word is one of `ADDRESS_WORDS`: start, end, last, base,
           addr, address, va, pa, phys, ptr (start, end, base_addr, chunk_base,
           pcpu_base_addr, table_pa, ptr)

Only columns of numbers (not booleans) are read as addresses or sizes by name. Addresses
print with `kernel.fmt_addr`, an exclusive end of 2**64 unwrapped (`kernel.fmt_end`);
sizes with `kernel.format_size`. In the other columns whole numbers stay integers (an
integer column with gaps, which pandas stores as floats, prints as integers) and a
missing value prints as an empty cell, never NaN.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from ..kernel import fmt_end, format_size

__all__ = ["ADDRESS_WORDS", "SIZE_WORDS", "address_columns", "readable", "size_columns"]

SIZE_WORDS = frozenset({"size", "bytes", "span", "offset"})
ADDRESS_WORDS = frozenset({"start", "end", "last", "base", "addr", "address", "va", "pa",
                           "phys", "ptr"})


def _words(column: Any) -> list[str]:
    return str(column).lower().split("_")


def _numbers(series: pd.Series) -> bool:
    """Integers or floats (missing values allowed), not booleans."""
    if pd.api.types.is_bool_dtype(series):
        return False
    if pd.api.types.is_numeric_dtype(series):
        return True
    values = series.dropna()
    return len(values) > 0 and all(isinstance(v, int) and not isinstance(v, bool)
                                   for v in values)


def size_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of `frame` the naming convention reads as sizes (bytes)."""
    return [c for c in frame.columns
            if SIZE_WORDS & set(_words(c)) and _numbers(frame[c])]


def address_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of `frame` the naming convention reads as addresses."""
    sizes = set(size_columns(frame))
    return [c for c in frame.columns
            if c not in sizes and _words(c)[-1] in ADDRESS_WORDS and _numbers(frame[c])]


def readable(frame: pd.DataFrame, *, addresses: Iterable[str] | None = None,
             sizes: Iterable[str] | None = None) -> pd.DataFrame:
    """A copy for reading: addresses as 0x-prefixed 16-digit hex, sizes in KB/MB/GB/TB as
    memory.rst writes them, missing values as empty cells.

    `addresses` and `sizes` name the columns to format; either one left out is read
    from the column names (the module's convention). A named column must exist."""
    size_cols = list(sizes) if sizes is not None else size_columns(frame)
    if addresses is not None:
        address_cols = list(addresses)
    else:
        address_cols = [c for c in address_columns(frame) if c not in size_cols]
    missing = [c for c in (*address_cols, *size_cols) if c not in frame.columns]
    if missing:
        raise ValueError(f"no column(s) {missing} in the frame; its columns are "
                         f"{list(frame.columns)}")
    out = frame.copy()
    for col in out.columns:
        if col in address_cols:
            out[col] = [_blank_or(fmt_end, v) for v in out[col]]
        elif col in size_cols:
            out[col] = [_blank_or(format_size, v) for v in out[col]]
        else:
            out[col] = _plain(out[col])
    return out


def _blank_or(fmt: Any, value: Any) -> str:
    if value is None or pd.isna(value):
        return ""
    return fmt(int(value))


def _plain(series: pd.Series) -> pd.Series:
    """Whole floats as integers and missing values as "" (other columns unchanged)."""
    missing = series.isna()
    if pd.api.types.is_float_dtype(series):
        present = series[~missing]
        if (present % 1 == 0).all():
            if not missing.any() and (present.abs() < 2.0 ** 63).all():
                return series.astype("int64")
            return pd.Series(["" if m else int(v) for v, m in zip(series, missing, strict=True)],
                             index=series.index, dtype=object)
    if missing.any():
        return series.astype(object).where(~missing, "")
    return series
