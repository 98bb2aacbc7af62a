"""What the model assumes about the RFC series' unpublished patches (03-11), in one place.

Only patches 01 and 02 of "Optimize this_cpu_*() ops for non-x86 (ARM64 for this
series)" are public. Where the first chunk and later chunks go inside the Global
and Local Percpu areas (patches 03-06 and 09) is not, so every model takes it from
an `RfcPlacement`; `DEFAULT_PLACEMENT` is what the explorer shows unless told
otherwise.

The constraint the patch text does state: "the offset returned by percpu allocator
must be used to access both global percpu and local percpu", with the same offset to
each area's base. So for a percpu address `addr` (the unit-0 copy, offset
`addr - pcpu_base_addr`), the local address is `local_base + (addr - pcpu_base_addr)`
on every CPU, and each CPU maps there its own unit's page.
"""

from __future__ import annotations

from dataclasses import dataclass

from .units import align_down

FIRST_CHUNK_PLACES = ("top", "bottom")
CHUNK_DIRECTIONS = ("top-down", "bottom-up")


@dataclass(frozen=True)
class RfcPlacement:
    """Where the patched kernel puts percpu chunks (an assumption, shown to users).

    first_chunk: "top" puts the first chunk's units at the top of the Global Percpu
        area and its local copy at the top of the Local Percpu area (local base
        LOCAL_PERCPU_END - unit_size), as a top-down allocator would; "bottom" puts
        them at PERCPU_START and LOCAL_PERCPU_START.
    chunk_direction: how later chunks are placed in the Global Percpu area: "top-down"
        as pcpu_get_vm_areas() searches vmalloc, or "bottom-up".
    """

    first_chunk: str = "top"
    chunk_direction: str = "top-down"

    def __post_init__(self) -> None:
        if self.first_chunk not in FIRST_CHUNK_PLACES:
            raise ValueError(f"first_chunk {self.first_chunk!r} is unknown; choose one of "
                             f"{', '.join(FIRST_CHUNK_PLACES)}")
        if self.chunk_direction not in CHUNK_DIRECTIONS:
            raise ValueError(f"chunk_direction {self.chunk_direction!r} is unknown; choose one "
                             f"of {', '.join(CHUNK_DIRECTIONS)}")

    def first_chunk_base(self, symbols: dict[str, int], span: int, align: int) -> int:
        """pcpu_base_addr: the start of the first chunk's units in the Global Percpu area."""
        if self.first_chunk == "top":
            return align_down(symbols["PERCPU_END"] - span, align)
        return symbols["PERCPU_START"]

    def local_base(self, symbols: dict[str, int], unit_size: int) -> int:
        """Where the first chunk's local copy starts (the local counterpart of pcpu_base_addr)."""
        if self.first_chunk == "top":
            return symbols["LOCAL_PERCPU_END"] - unit_size
        return symbols["LOCAL_PERCPU_START"]

    def describe(self) -> str:
        where = {"top": "at the top of", "bottom": "at the bottom of"}[self.first_chunk]
        return (f"first chunk {where} the Global and Local Percpu areas; later chunks "
                f"placed {self.chunk_direction} in the Global Percpu area (assumed: "
                "patches 03-09 are not public)")


DEFAULT_PLACEMENT = RfcPlacement()

# What the page-table model takes from patch 01/11 ("arm64: mm: enable percpu kernel page
# table"): its description is public, its code is not among our sources; the
# kernel.pgtable module docstring gives the details.
ROOTS_ASSUMPTION = ("patch 01/11 as its description states: every CPU but CPU 0 gets a root "
                    "page of its own (CPU 0 keeps swapper_pg_dir), every table outside the "
                    "Local Percpu area is shared, and CnP is cleared")
SYNC_ASSUMPTION = ("patch 01/11 (its description: PGD-level changes are copied to the other "
                   "CPUs; the code is not public) copies swapper_pg_dir's root entries for "
                   "[start, end) into every other CPU's root whenever a root entry changes "
                   "(arch_sync_kernel_mappings(), ARCH_PAGE_TABLE_SYNC_MASK the root level's "
                   "PGTBL_*_MODIFIED bit)")
