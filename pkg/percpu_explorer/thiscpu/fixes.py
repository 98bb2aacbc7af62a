"""Changes to arch/arm64/include/asm/percpu.h that alter what a this_cpu_*() op emits or
means, and which kernels carry them.

A mainline release (`7.1`, `7.1-rc1`) carries a change from the release that merged it.
A stable release (`6.12.117`) carries it from the first sublevel of its branch known to
have it; a sublevel known to lack it does not; any other stable release is "unknown"
(`has_fix` returns None) rather than guessed, and the listing then shows the code of the
mainline release its branch started from, saying so.

Where each fact comes from:
- mainline merges: the arm64 tree's tags and pull requests (commit ids below);
- 6.12.y: Debian's linux-source-6.12 6.12.117 changelog lists the stable changes under
  ChangeLog-6.12.112, and its arch/arm64/include/asm/percpu.h has all four changes;
- 6.1.y: Debian's linux-source-6.1 6.1.192 changelog lists the this_cpu_and()/write()
  fixes under ChangeLog-6.1.189, and its percpu.h still has STADD/STCLR/STSET and LSE
  instructions without the b/h size suffix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..kernel import KernelVersion, parse_kernel_version


@dataclass(frozen=True)
class PercpuFix:
    """One change to asm/percpu.h.

    key: short name used by the op model. commit, title: the mainline commit.
    mainline: first mainline release with it (None: merged after the last modelled
        release, 7.1). stable: branch -> first sublevel with it; lacking: branch -> a
        sublevel verified without it (so every sublevel up to it lacks it).
    effect: what it changes in the emitted code. source: where the versions were read.
    """

    key: str
    commit: str
    title: str
    mainline: tuple[int, int] | None
    stable: Mapping[tuple[int, int], int] = field(default_factory=dict)
    lacking: Mapping[tuple[int, int], int] = field(default_factory=dict)
    effect: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "stable", MappingProxyType(dict(self.stable)))
        object.__setattr__(self, "lacking", MappingProxyType(dict(self.lacking)))

    @property
    def label(self) -> str:
        return f'{self.commit} ("{self.title}")'


_DEB_6_12 = "Debian linux-source-6.12 6.12.117: changelog (ChangeLog-6.12.112) and percpu.h"
_DEB_6_1 = "Debian linux-source-6.1 6.1.192: changelog and percpu.h"

PERCPU_FIXES: dict[str, PercpuFix] = {fix.key: fix for fix in (
    PercpuFix(
        "lse_load_form", "535fdfc5a228",
        "arm64: Use load LSE atomics for the non-return per-CPU atomic operations",
        (6, 18), {(6, 12): 112}, {(6, 1): 192},
        "the non-returning add/and/or become LDADD/LDCLR/LDSET with a real (unused) "
        "destination register; STADD/STCLR/STSET are the assembler's aliases of those with "
        "XZR as destination, which many cores execute far, in the interconnect",
        f"v6.18-rc6; {_DEB_6_12}; {_DEB_6_1} (still STADD)"),
    PercpuFix(
        "lse_sizes", "8cf2093f5372", "arm64: percpu: Fix LSE operations on {8,16}-bit types",
        None, {(6, 12): 112}, {(6, 1): 192},
        "the LSE instruction of an 8- or 16-bit op gains its b/h suffix; without it "
        "this_cpu_add_1() and friends do a 32-bit atomic on the 1- or 2-byte variable",
        f"arm64-fixes tag of 2026-09-18, after v7.1; {_DEB_6_12}; {_DEB_6_1} (no suffix)"),
    PercpuFix(
        "and_mask", "44274c657256", "arm64: percpu: Fix this_cpu_and() mask generation",
        None, {(6, 12): 112, (6, 1): 189}, {},
        "this_cpu_and_N() passes ~(uN)(val) instead of ~val: before it the complement was "
        "taken in val's own type and without parentheses around the macro argument",
        f"arm64-fixes tag of 2026-09-18, after v7.1; {_DEB_6_12}; {_DEB_6_1} (6.1.189)"),
    PercpuFix(
        "write_cast", "885bff055a0f", "arm64: percpu: Fix this_cpu_write() casting",
        None, {(6, 12): 112, (6, 1): 189}, {},
        "this_cpu_write_N() casts (unsigned long)(val) instead of (unsigned long)val: "
        "before it the cast bound only to the first term of an expression argument",
        f"arm64-fixes tag of 2026-09-18, after v7.1; {_DEB_6_12}; {_DEB_6_1} (6.1.189)"),
)}


def percpu_fix(key: str) -> PercpuFix:
    """The fix called `key` (ValueError naming the keys otherwise)."""
    if key not in PERCPU_FIXES:
        raise ValueError(f"percpu.h fix {key!r} is unknown; choose one of "
                         f"{', '.join(PERCPU_FIXES)}")
    return PERCPU_FIXES[key]


def has_fix(key: str, kernel: str | KernelVersion) -> bool | None:
    """Whether `kernel` carries the fix: True, False, or None when not verified."""
    fix = percpu_fix(key)
    version = parse_kernel_version(kernel)
    in_mainline = fix.mainline is not None and version.release >= fix.mainline
    if version.sublevel is None or in_mainline:
        return in_mainline
    first = fix.stable.get(version.release)
    if first is not None:
        return version.sublevel >= first
    last_without = fix.lacking.get(version.release)
    if last_without is not None and version.sublevel <= last_without:
        return False
    return None


def base_release(kernel: str | KernelVersion) -> str:
    """The mainline release a stable kernel's branch started from (6.12.117 -> 6.12)."""
    version = parse_kernel_version(kernel)
    return f"{version.major}.{version.minor}"


def fix_status(kernel: str | KernelVersion) -> list[dict[str, object]]:
    """One row per fix: key, commit, title, whether `kernel` has it (True/False/None)
    and where that comes from."""
    return [{"fix": fix.key, "commit": fix.commit, "title": fix.title,
             "has_fix": has_fix(fix.key, kernel), "effect": fix.effect, "source": fix.source}
            for fix in PERCPU_FIXES.values()]
