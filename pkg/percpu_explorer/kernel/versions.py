"""Kernel versions and the layout era each one belongs to.

A version is `MAJOR.MINOR` (the mainline release as tagged), `MAJOR.MINOR-rcN`
(treated like the release it leads to), or `MAJOR.MINOR.SUBLEVEL` (a stable
release, which may carry backported fixes that the mainline `.0` lacks).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from ..errors import InputError, shown

# Mainline releases whose arm64 layout is modelled, oldest first.
# v5.17 removed the BPF JIT region below the modules; older kernels are not modelled.
MAINLINE_RELEASES: tuple[tuple[int, int], ...] = (
    (5, 17), (5, 18), (5, 19),
    *((6, minor) for minor in range(20)),
    (7, 0), (7, 1),
)

# Layout eras: (first release, name). The formulas of each are in layout.py.
ERAS: tuple[tuple[tuple[int, int], str], ...] = (
    ((5, 17), "5.17-6.4"),
    ((6, 5), "6.5-6.8"),
    ((6, 9), "6.9+"),
)

_VERSION_RE = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+)|-rc(\d+))?\s*$")


@dataclass(frozen=True, order=True)
class KernelVersion:
    """A kernel version: mainline `major.minor`, optionally a stable `sublevel` or an `rc`."""

    major: int
    minor: int
    sublevel: int | None = None
    rc: int | None = None

    @property
    def release(self) -> tuple[int, int]:
        return (self.major, self.minor)

    def at_least(self, major: int, minor: int) -> bool:
        return self.release >= (major, minor)

    @property
    def era(self) -> str:
        """The layout era this version belongs to (see `ERAS`)."""
        name = ERAS[0][1]
        for first, era_name in ERAS:
            if self.release >= first:
                name = era_name
        return name

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}"
        if self.sublevel is not None:
            text += f".{self.sublevel}"
        if self.rc is not None:
            text += f"-rc{self.rc}"
        return text


def supported_range() -> str:
    first, last = MAINLINE_RELEASES[0], MAINLINE_RELEASES[-1]
    return f"{first[0]}.{first[1]} to {last[0]}.{last[1]}"


def parse_kernel_version(text: str | KernelVersion) -> KernelVersion:
    """Parse `6.12`, `6.12.117` or `7.1-rc1`; reject versions whose layout is not modelled."""
    if isinstance(text, str | KernelVersion):  # the models ask for the same few many times
        return _parse_kernel_version(text)
    return _parse_kernel_version.__wrapped__(text)


@functools.lru_cache(maxsize=256)
def _parse_kernel_version(text: str | KernelVersion) -> KernelVersion:
    if isinstance(text, KernelVersion):
        version = text
    else:
        match = _VERSION_RE.match(str(text)) if len(str(text)) < 40 else None
        if not match:
            raise InputError(
                f"kernel version {shown(text)} is not understood; write it like 6.8, 6.12.117 or "
                f"7.1-rc1 (modelled releases: {supported_range()})", field="kernel"
            )
        major, minor, sub, rc = match.groups()
        version = KernelVersion(
            int(major), int(minor), int(sub) if sub else None, int(rc) if rc else None
        )
    if version.release not in MAINLINE_RELEASES:
        raise InputError(
            f"kernel version {str(text).strip()} is not modelled; choose a release from "
            f"{supported_range()} "
            f"(the arm64 layout before 5.17 had a BPF JIT region, and releases after "
            f"{MAINLINE_RELEASES[-1][0]}.{MAINLINE_RELEASES[-1][1]} have not been checked)",
            field="kernel"
        )
    return version
