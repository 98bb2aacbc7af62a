"""The arm64 fixmap: how many slots `enum fixed_addresses` has for a configuration.

arch/arm64/include/asm/fixmap.h lays the slots out from FIXADDR_TOP downwards,
one page each. `__end_of_permanent_fixed_addresses` counts the permanent ones
(FIXADDR_SIZE, FIXADDR_START); `__end_of_fixed_addresses` adds the early_ioremap()
slots and the page-table slots (FIXADDR_TOT_SIZE, FIXADDR_TOT_START). Which
slots exist changed between kernel versions; `FIXMAP_HISTORY` names each change.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import KernelConfig
from .units import SZ_2M, SZ_256K, div_round_up
from .versions import KernelVersion

MAX_FDT_SIZE = SZ_2M  # arch/arm64/include/asm/boot.h
FIX_BTMAPS_SLOTS = 7  # arch/arm64/include/asm/fixmap.h

# Releases that changed the slot list (first mainline release carrying each change).
# FIX_FDT = FIX_FDT_END + DIV_ROUND_UP(MAX_FDT_SIZE, PAGE_SIZE) + 1
FDT_PAGE_GRANULAR_SINCE = (6, 4)
# FIX_ENTRY_TRAMP_DATA became FIX_ENTRY_TRAMP_TEXT4, present only with CONFIG_RELOCATABLE.
TRAMP_TEXT4_SINCE = (6, 0)
FIX_P4D_SINCE = (6, 9)  # LPA2 adds a fifth page-table fixmap slot
FIX_VNCR_SINCE = (6, 16)  # one FIX_VNCR slot per CPU with CONFIG_KVM
# "arm64: fixmap: Allow 256K early_ioremap() at any offset": NR_FIX_BTMAPS gains a page.
BTMAP_EXTRA_PAGE_SINCE = (7, 2)
# Stable series that carry the backport, and the first sublevel with it (Debian's
# changelogs list it under ChangeLog-6.1.189 and ChangeLog-6.12.111; 6.6.158's
# stable review carries it). 6.18.y queued it at an unknown sublevel: pass
# btmap_extra_page explicitly for a 6.18 stable kernel.
BTMAP_EXTRA_PAGE_STABLE = {(6, 1): 189, (6, 6): 158, (6, 12): 111}

FIXMAP_HISTORY: tuple[tuple[str, str], ...] = (
    ("6.0", "FIX_ENTRY_TRAMP_DATA replaced by FIX_ENTRY_TRAMP_TEXT4, only with CONFIG_RELOCATABLE"),
    ("6.4", "FDT window sized DIV_ROUND_UP(MAX_FDT_SIZE, PAGE_SIZE) + 2 pages, "
            "was MAX_FDT_SIZE + 2M; "
            "FIXADDR_TOT_START defined"),
    ("6.9", "FIX_P4D added for five-level (LPA2) page tables"),
    ("6.16", "FIX_VNCR: one slot per CPU (CONFIG_NR_CPUS) when KVM is built in"),
    ("7.2; stable 6.1.189, 6.6.158, 6.12.111", "NR_FIX_BTMAPS = SZ_256K / PAGE_SIZE + 1"),
)


def btmap_extra_page_default(version: KernelVersion) -> bool:
    """Whether a kernel version carries NR_FIX_BTMAPS = SZ_256K / PAGE_SIZE + 1."""
    if version.release >= BTMAP_EXTRA_PAGE_SINCE:
        return True
    first_sublevel = BTMAP_EXTRA_PAGE_STABLE.get(version.release)
    return first_sublevel is not None and (version.sublevel or 0) >= first_sublevel


@dataclass(frozen=True)
class FixmapSlots:
    """Counts from `enum fixed_addresses` (each slot is one page).

    permanent: `__end_of_permanent_fixed_addresses` (FIXADDR_SIZE >> PAGE_SHIFT).
    total: `__end_of_fixed_addresses` (FIXADDR_TOT_SIZE >> PAGE_SHIFT).
    fdt, vncr, ghes, kpti_tramp, btmaps, pgtable: the slots of each group.
    """

    permanent: int
    total: int
    fdt: int
    vncr: int
    ghes: int
    kpti_tramp: int
    btmaps: int
    pgtable: int


def fixmap_slots(cfg: KernelConfig) -> FixmapSlots:
    """Count the fixmap slots of `cfg`, walking the enum as the compiler numbers it."""
    version = cfg.version
    page = cfg.page_size
    index = 1  # FIX_HOLE
    # FIX_FDT_END .. FIX_FDT
    if version.release >= FDT_PAGE_GRANULAR_SINCE:
        fdt = div_round_up(MAX_FDT_SIZE, page) + 1 + 1
    else:
        fdt = (MAX_FDT_SIZE + SZ_2M) // page
    index += fdt
    index += 2  # FIX_EARLYCON_MEM_BASE, FIX_TEXT_POKE0
    vncr = 0
    if cfg.kvm and version.release >= FIX_VNCR_SINCE:
        vncr = cfg.nr_cpus + 1  # FIX_VNCR_END .. FIX_VNCR_END + NR_CPUS
    index += vncr
    ghes = 0
    if cfg.ghes:
        ghes = 2 + (2 if cfg.sdei else 0)  # GHES_IRQ, GHES_SEA [, SDEI_NORMAL, SDEI_CRITICAL]
    index += ghes
    tramp = 0
    if cfg.kpti:
        if version.release >= TRAMP_TEXT4_SINCE:
            tramp = 3 + (1 if cfg.relocatable else 0)  # [TEXT4 for the data page,] TEXT3..1
        else:
            tramp = 4  # TEXT3..1 and FIX_ENTRY_TRAMP_DATA
    index += tramp
    permanent = index
    extra = cfg.btmap_extra_page
    if extra is None:
        extra = btmap_extra_page_default(version)
    btmaps = (SZ_256K // page + (1 if extra else 0)) * FIX_BTMAPS_SLOTS
    index += btmaps
    pgtable = 5 if version.release >= FIX_P4D_SINCE else 4  # FIX_PTE, PMD, PUD, [P4D,] PGD
    index += pgtable
    return FixmapSlots(
        permanent=permanent,
        total=index,
        fdt=fdt,
        vncr=vncr,
        ghes=ghes,
        kpti_tramp=tramp,
        btmaps=btmaps,
        pgtable=pgtable,
    )
