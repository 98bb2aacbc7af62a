"""The kernel configuration every model starts from.

`KernelConfig` holds the Kconfig choices that decide the arm64 kernel virtual
address layout (CONFIG_ARM64_PAGE_SHIFT, CONFIG_ARM64_VA_BITS, KASAN,
CONFIG_NR_CPUS and the options that add fixmap slots), the hardware's
`vabits_actual`, the kernel version, and whether the RFC "local percpu" patch
(02/11, "arm64: mm: define percpu virtual space area") is applied.
Each Kconfig rule is checked once; `choices_for()` and `resolve_choices()` apply
the same rules one field at a time, as a configuration panel offers them. The preemption
models a version builds (kernel/Kconfig.preempt) are `preempt_choices()`, checked by
`check_preempt()` wherever a model is taken.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..errors import InputError, shown
from .units import parse_size
from .versions import MAINLINE_RELEASES, KernelVersion, parse_kernel_version

PAGE_SIZES: tuple[int, ...] = (4096, 16384, 65536)
PAGE_SIZE_NAMES = {4096: "4K", 16384: "16K", 65536: "64K"}
KASAN_MODES: tuple[str, ...] = ("none", "generic", "sw-tags")
DEFAULT_KERNEL = "7.1"

# arch/arm64/Kconfig, choice "Virtual address space size": the ARM64_VA_BITS_*
# entries and the page sizes each depends on. 52-bit with 4K and 16K pages
# needs LPA2, added in v6.9; before it ARM64_VA_BITS_52 depended on 64K pages.
_VA_BITS_BEFORE_6_9 = {4096: (39, 48), 16384: (36, 47, 48), 65536: (42, 48, 52)}
_VA_BITS_SINCE_6_9 = {4096: (39, 48, 52), 16384: (36, 47, 48, 52), 65536: (42, 48, 52)}

# RFC patch 02/11 edits the layout formulas of v6.9 (vmemmap at -1G, LPA2); the series
# is based on v7.1-rc1. Earlier layouts have no LOCAL_PERCPU_END formula to patch.
LOCAL_PERCPU_SINCE = (6, 9)
_SINCE = ".".join(map(str, LOCAL_PERCPU_SINCE))
LOCAL_PERCPU_LAYOUT = f"v{_SINCE}+ layout"

# CONFIG_NR_CPUS: arch/arm64/Kconfig `int "Maximum number of CPUs (2-4096)"`, `range 2
# 4096` (the default became 512 with commit 3fbd56f0e7c1 "ARM64: Dynamically allocate
# cpumasks and increase supported CPUs to 512"; 2025 source, blob 393d71124f5d, still has
# this range). arm64 has no MAXSMP option, so a build allows at most 4096 CPUs.
NR_CPUS_RANGE = (2, 4096)

# The choices a configuration panel offers, parents first (each one's choices depend
# on those before it), and the kernels it offers: the modelled mainline releases.
CHOICE_FIELDS: tuple[str, ...] = ("kernel", "page_size", "va_bits", "vabits_actual", "kasan",
                                  "local_percpu", "nr_cpus")
KERNEL_RELEASES: tuple[str, ...] = tuple(f"{a}.{b}" for a, b in MAINLINE_RELEASES)


def va_bits_choices(
    page_size: int, kernel: str | KernelVersion = DEFAULT_KERNEL
) -> tuple[int, ...]:
    """The CONFIG_ARM64_VA_BITS values arch/arm64/Kconfig offers for a page size."""
    version = parse_kernel_version(kernel)
    table = _VA_BITS_SINCE_6_9 if version.at_least(6, 9) else _VA_BITS_BEFORE_6_9
    return table[page_size]


def va_bits_min(page_size: int, va_bits: int) -> int:
    """VA_BITS_MIN (asm/memory.h): 48, or 47 with 16K pages, when VA_BITS is 52."""
    if va_bits > 48:
        return 47 if page_size == 16384 else 48
    return va_bits


def vabits_actual_choices(page_size: int, va_bits: int) -> tuple[int, ...]:
    """What `vabits_actual` can be at run time: VA_BITS, or VA_BITS_MIN on hardware
    without 52-bit VA (no LPA2 / LVA), as arch/arm64 falls back at boot."""
    low = va_bits_min(page_size, va_bits)
    return (va_bits,) if low == va_bits else (va_bits, low)


def kasan_choices(
    page_size: int, va_bits: int, kernel: str | KernelVersion = DEFAULT_KERNEL
) -> tuple[str, ...]:
    """KASAN modes arch/arm64/Kconfig allows: all, except with 16K/48 before v6.9."""
    version = parse_kernel_version(kernel)
    if page_size == 16384 and va_bits == 48 and not version.at_least(6, 9):
        return ("none",)
    return KASAN_MODES


def local_percpu_supported(kernel: str | KernelVersion) -> bool:
    """Whether RFC patch 02/11 applies to this kernel's layout (v6.9 formulas and later)."""
    return parse_kernel_version(kernel).at_least(*LOCAL_PERCPU_SINCE)


def local_percpu_refusal(kernel: str | KernelVersion) -> str:
    """Why patch 02/11 cannot apply to an older kernel, in one sentence."""
    version = parse_kernel_version(kernel)
    return (f"RFC patch 02/11 is written for the {LOCAL_PERCPU_LAYOUT} (series base v7.1-rc1); "
            f"kernel {version} has the {version.era} layout. Choose a kernel from "
            f"{_SINCE} on")


def _choices(values: tuple[Any, ...], fmt: Any = str) -> str:
    return ", ".join(fmt(v) for v in values)


# --- the preemption model (kernel/Kconfig.preempt, choice "Preemption Model") -----------
# Names and the Kconfig symbol each one is. "none" and "voluntary" are modelled without
# CONFIG_PREEMPT_COUNT (as Debian's arm64 6.12 build: PREEMPT_VOLUNTARY, no PREEMPT_DYNAMIC),
# so preempt_disable/enable_notrace() are barrier() only; full, lazy and rt have a count.
PREEMPT_MODELS: tuple[str, ...] = ("none", "voluntary", "full", "lazy", "rt")
PREEMPT_KCONFIG: dict[str, str] = {"none": "PREEMPT_NONE", "voluntary": "PREEMPT_VOLUNTARY",
                                   "full": "PREEMPT", "lazy": "PREEMPT_LAZY", "rt": "PREEMPT_RT"}
# arch/arm64/Kconfig "select ARCH_SUPPORTS_RT": commit d8fccd9ca5f9 ("arm64: Allow to enable
# PREEMPT_RT."), merged for v6.12.
PREEMPT_RT_SINCE = (6, 12)
# PREEMPT_LAZY came in v6.13 for architectures selecting ARCH_HAS_PREEMPT_LAZY; arm64 selects
# it from v6.16: commit c8597e2dd8b6 ("arm64: enable PREEMPT_LAZY", arm64 updates for 6.16).
PREEMPT_LAZY_SINCE = (6, 16)
# Commit 7dadeaa6e851 ("sched: Further restrict the preemption modes", v7.0): PREEMPT_NONE
# "depends on ARCH_NO_PREEMPT", PREEMPT_VOLUNTARY "depends on !ARCH_HAS_PREEMPT_LAZY", and
# the choice defaults to PREEMPT_LAZY where the architecture has it. arm64 has it.
PREEMPT_RESTRICTED_SINCE = (7, 0)
PREEMPT_RESTRICTED_COMMIT = '7dadeaa6e851 ("sched: Further restrict the preemption modes")'


def preempt_choices(kernel: str | KernelVersion = DEFAULT_KERNEL) -> tuple[str, ...]:
    """The preemption models an arm64 kernel of this version can be built with.

    Before v7.0: none, voluntary and full, plus rt from v6.12 and lazy from v6.16. From
    v7.0 (7dadeaa6e851) arm64, which has PREEMPT_LAZY, offers only full, lazy and rt.
    """
    version = parse_kernel_version(kernel)
    if version.at_least(*PREEMPT_RESTRICTED_SINCE):
        return ("full", "lazy", "rt")
    models = ["none", "voluntary", "full"]
    if version.at_least(*PREEMPT_LAZY_SINCE):
        models.append("lazy")
    if version.at_least(*PREEMPT_RT_SINCE):
        models.append("rt")
    return tuple(models)


def has_preempt_count(preempt: str) -> bool:
    """Whether the model has CONFIG_PREEMPT_COUNT (full, lazy, rt); the modelled none and
    voluntary kernels have none (include/linux/preempt.h: the bracket is barrier())."""
    _check_model_name(preempt)
    return preempt in ("full", "lazy", "rt")


def _check_model_name(preempt: str) -> str:
    if preempt not in PREEMPT_MODELS:
        raise InputError(f"preempt {shown(preempt)} is unknown; choose one of "
                         f"{_choices(PREEMPT_MODELS)}", field="preempt")
    return preempt


def check_preempt(preempt: str, kernel: str | KernelVersion = DEFAULT_KERNEL) -> str:
    """`preempt` if arm64 offers it in `kernel`, else ValueError in one line naming the
    commit that decides it and the valid choices."""
    version = parse_kernel_version(kernel)
    allowed = preempt_choices(version)
    if preempt in allowed:
        return preempt
    if preempt not in PREEMPT_MODELS:
        raise InputError(f"preempt {shown(preempt)} is unknown; choose one of "
                         f"{_choices(allowed)} (the models arm64 kernel {version} offers)",
                         field="preempt")
    symbol = PREEMPT_KCONFIG[preempt]
    if preempt in ("none", "voluntary"):
        why = (f"since v7.0, commit {PREEMPT_RESTRICTED_COMMIT}, {symbol} depends on "
               + ("ARCH_NO_PREEMPT, which arm64 does not select" if preempt == "none"
                  else "!ARCH_HAS_PREEMPT_LAZY, and arm64 selects ARCH_HAS_PREEMPT_LAZY"))
    elif preempt == "lazy":
        why = ("arm64 selects ARCH_HAS_PREEMPT_LAZY from v6.16 (commit c8597e2dd8b6 "
               "\"arm64: enable PREEMPT_LAZY\")")
    else:
        why = ("arm64 selects ARCH_SUPPORTS_RT from v6.12 (commit d8fccd9ca5f9 \"arm64: "
               "Allow to enable PREEMPT_RT.\")")
    raise InputError(f"preempt {preempt!r} is not offered by arm64 kernel {version}: {why}; "
                     f"choose one of {_choices(allowed)}", field="preempt")


def preempt_from_kconfig(facts: dict[str, str | None]) -> str | None:
    """The model name of a kernel .config's preemption choice ({"CONFIG_PREEMPT_RT": "y",
    ...}), or None when the facts name none of them."""
    for name in ("rt", "lazy", "full", "voluntary", "none"):
        if facts.get(f"CONFIG_{PREEMPT_KCONFIG[name]}") == "y":
            return name
    return None


# --- the rules, each checked once: by KernelConfig and by resolve_choices() ------------

def _check_page_size(page_size: int | str) -> int:
    """The page size in bytes ("4K" accepted) if it is an arm64 granule."""
    size = parse_size(page_size, name="page_size") if isinstance(page_size, str) else page_size
    if isinstance(size, bool) or size not in PAGE_SIZES:
        raise InputError(
            f"page size {shown(size)} is not an arm64 granule; choose one of "
            f"{_choices(PAGE_SIZES, lambda p: PAGE_SIZE_NAMES[p])}", field="page_size"
        )
    return size


def _check_va_bits(page_size: int, va_bits: int, version: KernelVersion) -> int:
    allowed = va_bits_choices(page_size, version)
    if isinstance(va_bits, bool) or va_bits not in allowed:
        raise InputError(
            f"va_bits {shown(va_bits)} is not offered with {PAGE_SIZE_NAMES[page_size]} pages in "
            f"kernel {version}; choose one of {_choices(allowed)}", field="va_bits"
        )
    return va_bits


def _check_vabits_actual(page_size: int, va_bits: int, actual: int) -> int:
    allowed = vabits_actual_choices(page_size, va_bits)
    if isinstance(actual, bool) or actual not in allowed:
        raise InputError(
            f"vabits_actual {shown(actual)} is not possible for a {va_bits}-bit kernel with "
            f"{PAGE_SIZE_NAMES[page_size]} pages; choose one of {_choices(allowed)}",
            field="vabits_actual"
        )
    return actual


def _check_kasan(page_size: int, va_bits: int, kasan: str, version: KernelVersion) -> str:
    if kasan not in KASAN_MODES:
        raise InputError(f"kasan {shown(kasan)} is unknown; choose one of "
                         f"{_choices(KASAN_MODES)}", field="kasan")
    # Before the v6.9 layout, arch/arm64/Kconfig selected HAVE_ARCH_KASAN
    # "if !(ARM64_16K_PAGES && ARM64_VA_BITS_48)".
    if kasan not in kasan_choices(page_size, va_bits, version):
        raise InputError(
            f"kasan {kasan!r} is not available with 16K pages and 48-bit VA in kernel "
            f"{version} (HAVE_ARCH_KASAN excludes it before 6.9); choose kasan 'none'",
            field="kasan"
        )
    return kasan


def _check_nr_cpus(nr_cpus: int) -> int:
    low, high = NR_CPUS_RANGE
    if not isinstance(nr_cpus, int) or isinstance(nr_cpus, bool) or not low <= nr_cpus <= high:
        raise InputError(f"nr_cpus {shown(nr_cpus)} is outside CONFIG_NR_CPUS's range "
                         f"{low}..{high} (arch/arm64/Kconfig)", field="nr_cpus")
    return nr_cpus


def _check_local_percpu(local_percpu: bool, version: KernelVersion) -> bool:
    if local_percpu and not local_percpu_supported(version):
        raise InputError(f"local_percpu: {local_percpu_refusal(version)}, or "
                         "local_percpu=False", field="local_percpu")
    return bool(local_percpu)


@dataclass(frozen=True)
class KernelConfig:
    """A kernel configuration: Kconfig choices, hardware VA size and kernel version.

    page_size: 4096, 16384 or 65536 (CONFIG_ARM64_4K/16K/64K_PAGES); "4K" etc. accepted.
    va_bits: CONFIG_ARM64_VA_BITS, restricted to what arch/arm64/Kconfig allows.
    vabits_actual: the VA size the hardware runs with; differs from va_bits only for
        52-bit kernels on hardware without 52-bit VA (then VA_BITS_MIN: 48, or 47 with 16K).
    kasan: "none", "generic" (CONFIG_KASAN_GENERIC) or "sw-tags" (CONFIG_KASAN_SW_TAGS).
    nr_cpus: CONFIG_NR_CPUS (2..4096); sizes the per-CPU FIX_VNCR fixmap slots since v6.16.
    kvm, kpti, ghes, sdei, relocatable: CONFIG_KVM, CONFIG_UNMAP_KERNEL_AT_EL0,
        CONFIG_ACPI_APEI_GHES, CONFIG_ARM_SDE_INTERFACE, CONFIG_RELOCATABLE (fixmap slots).
    local_percpu: apply RFC patch 02/11 (dedicated Global and Local Percpu areas).
    kernel: kernel version, e.g. "6.8", "6.12.117", "7.1-rc1"; decides the layout era.
    btmap_extra_page: NR_FIX_BTMAPS = SZ_256K / PAGE_SIZE + 1 (the fix "arm64: fixmap:
        Allow 256K early_ioremap() at any offset"); None follows the kernel version.
    struct_page_size: sizeof(struct page), 64 on arm64 builds without debug options.
    """

    page_size: int = 4096
    va_bits: int = 48
    vabits_actual: int | None = None
    kasan: str = "none"
    nr_cpus: int = 512
    kvm: bool = True
    kpti: bool = True
    ghes: bool = True
    sdei: bool = True
    relocatable: bool = True
    local_percpu: bool = False
    kernel: str = DEFAULT_KERNEL
    btmap_extra_page: bool | None = None
    struct_page_size: int = 64

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "page_size", _check_page_size(self.page_size))
        version = parse_kernel_version(self.kernel)
        set_(self, "kernel", str(version))
        _check_va_bits(self.page_size, self.va_bits, version)
        if self.vabits_actual is None:
            set_(self, "vabits_actual", self.va_bits)
        _check_vabits_actual(self.page_size, self.va_bits, self.vabits_actual)
        _check_kasan(self.page_size, self.va_bits, self.kasan, version)
        _check_nr_cpus(self.nr_cpus)
        _check_local_percpu(self.local_percpu, version)
        size = self.struct_page_size
        if isinstance(size, bool) or not isinstance(size, int) or size % 8 \
                or not 32 <= size <= 256:
            raise InputError(
                f"struct_page_size {shown(size)} is not a plausible sizeof(struct page); "
                f"use a multiple of 8 from 32 to 256 (64 on arm64 without debug options)",
                field="struct_page_size"
            )

    @property
    def version(self) -> KernelVersion:
        return parse_kernel_version(self.kernel)

    @property
    def page_shift(self) -> int:
        return self.page_size.bit_length() - 1

    @property
    def page_size_name(self) -> str:
        return PAGE_SIZE_NAMES[self.page_size]

    def replace(self, **changes: Any) -> KernelConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KernelConfig:
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict):
            raise InputError(f"a KernelConfig is a mapping of its fields, not "
                             f"{type(data).__name__}; known fields: {sorted(known)}")
        unknown = sorted(map(str, set(data) - known))
        if unknown:
            raise InputError(f"unknown KernelConfig field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    def label(self) -> str:
        """Short name such as `4K/48`, `4K/52 (48 on hw)`, `+KASAN generic`."""
        text = f"{self.page_size_name}/{self.va_bits}"
        if self.vabits_actual != self.va_bits:
            text += f" ({self.vabits_actual}-bit hw)"
        if self.kasan != "none":
            text += f" KASAN {self.kasan}"
        return text


def valid_configs(
    kernel: str = DEFAULT_KERNEL, *, kasan: tuple[str, ...] = KASAN_MODES, **common: Any
) -> Iterator[KernelConfig]:
    """Every page size / VA bits / vabits_actual / KASAN combination the kernel allows."""
    for mode in kasan:
        if mode not in KASAN_MODES:
            raise InputError(f"kasan {shown(mode)} is unknown; choose one of "
                             f"{_choices(KASAN_MODES)}", field="kasan")
    for page_size in PAGE_SIZES:
        for va_bits in va_bits_choices(page_size, kernel):
            for actual in vabits_actual_choices(page_size, va_bits):
                for mode in kasan:
                    if mode not in kasan_choices(page_size, va_bits, kernel):
                        continue
                    yield KernelConfig(
                        page_size=page_size,
                        va_bits=va_bits,
                        vabits_actual=actual,
                        kasan=mode,
                        kernel=kernel,
                        **common,
                    )


# --- choosing a configuration one field at a time --------------------------------------

def choices_for(values: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """What each of `CHOICE_FIELDS` may be, given the values of the fields before it
    (Kconfig's dependencies); for nr_cpus the (low, high) of CONFIG_NR_CPUS's range."""
    kernel, page, va_bits = values["kernel"], values["page_size"], values["va_bits"]
    return {
        "kernel": KERNEL_RELEASES,
        "page_size": PAGE_SIZES,
        "va_bits": va_bits_choices(page, kernel),
        "vabits_actual": vabits_actual_choices(page, va_bits),
        "kasan": kasan_choices(page, va_bits, kernel),
        "local_percpu": (False, True) if local_percpu_supported(kernel) else (False,),
        "nr_cpus": NR_CPUS_RANGE,
    }


def _pick(current: Any, choices: tuple[Any, ...], preferred: Any) -> Any:
    """Keep `current` if still offered, else `preferred` if offered, else the first."""
    if current in choices:
        return current
    return preferred if preferred in choices else choices[0]


def resolve_choices(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The values of `CHOICE_FIELDS` after `changes`, parents first.

    A value given in `changes` must pass the rule KernelConfig checks (ValueError with
    the same message otherwise); the kernel must be one of `KERNEL_RELEASES`. A
    dependant not given keeps its value if still offered, else moves to the nearest
    offered one (48 bits, the kernel's own VA size, no KASAN, mainline percpu).
    """
    unknown = sorted(set(changes) - set(CHOICE_FIELDS))
    if unknown:
        raise InputError(f"unknown control(s) {unknown}; the panel has {list(CHOICE_FIELDS)}")
    v = {**current}
    if "kernel" in changes:
        kernel = str(changes["kernel"])
        if kernel not in KERNEL_RELEASES:
            raise InputError(f"kernel {shown(kernel)} is not offered (a mainline release); choose "
                             f"one of {_choices(KERNEL_RELEASES)}")
        v["kernel"] = kernel
    if "page_size" in changes:
        v["page_size"] = _check_page_size(changes["page_size"])
    version, page = parse_kernel_version(v["kernel"]), v["page_size"]
    if "va_bits" in changes:
        v["va_bits"] = _check_va_bits(page, changes["va_bits"], version)
    else:
        v["va_bits"] = _pick(v["va_bits"], va_bits_choices(page, version), 48)
    if changes.get("vabits_actual") is not None:
        v["vabits_actual"] = _check_vabits_actual(page, v["va_bits"], changes["vabits_actual"])
    else:
        v["vabits_actual"] = _pick(v["vabits_actual"], vabits_actual_choices(page, v["va_bits"]),
                                   v["va_bits"])
    if "kasan" in changes:
        v["kasan"] = _check_kasan(page, v["va_bits"], changes["kasan"], version)
    else:
        v["kasan"] = _pick(v["kasan"], kasan_choices(page, v["va_bits"], version), "none")
    if "local_percpu" in changes:
        v["local_percpu"] = _check_local_percpu(changes["local_percpu"], version)
    v["local_percpu"] = v["local_percpu"] and local_percpu_supported(version)
    if "nr_cpus" in changes:
        v["nr_cpus"] = _check_nr_cpus(changes["nr_cpus"])
    return v
