"""Chunk placement and mappings (mm/percpu-vm.c): where chunks go, mainline and
patched, and what their pages map to."""

import pytest

from percpu_explorer import KernelConfig, compute_layout
from percpu_explorer.percpu.allocator import PercpuAllocator, boot_percpu
from percpu_explorer.percpu.errors import AreaExhausted
from percpu_explorer.percpu.first_chunk import build_alloc_info

# --- placement and offsets: the patch's claims ---------------------------------------------


def test_mainline_offsets_span_the_vmalloc_space():
    # Patch 02/11: "percpu variables are typically allocated from the high address of
    # vmalloc space. So the offset could be quite big. It may be the whole size of vmalloc".
    cfg = KernelConfig()
    alloc = PercpuAllocator(build_alloc_info(101464, nr_cpus=4), cfg=cfg)
    while alloc.alloc(4096, 4096).chunk_id == alloc.first_chunk.id:
        pass
    dynamic = next(c for c in alloc.chunks if c.kind == "dynamic")
    sym = compute_layout(cfg).symbols
    # pcpu_get_vm_areas() searches top-down from VMALLOC_END (aligned to the atom).
    assert dynamic.base_addr + alloc.nr_units * alloc.unit_size == sym["VMALLOC_END"]
    assert dynamic.base_addr - alloc.base_addr > 250 << 40  # ~254TB above the first chunk


def test_patched_offsets_stay_inside_the_area_and_work_in_both():
    cfg = KernelConfig(local_percpu=True)
    sym = compute_layout(cfg).symbols
    mapper = DictMapper(4096)
    alloc = PercpuAllocator(build_alloc_info(101464, nr_cpus=4), cfg=cfg, mapper=mapper)
    # rfc.DEFAULT_PLACEMENT: the first chunk's 4 units end at PERCPU_END.
    assert alloc.base_addr == sym["PERCPU_END"] - 4 * 139264
    results = [alloc.alloc(4096, 4096) for _ in range(40)] + [alloc.alloc(8, reserved=True)]
    kinds = {next(c.kind for c in alloc.chunks if c.id == r.chunk_id) for r in results}
    assert kinds == {"first", "reserved", "dynamic"}
    for r in results:
        offset = alloc.offset_from_base(r.ptr)  # later chunks lie below the first one
        assert -sym["PERCPU_SIZE"] < offset < sym["PERCPU_SIZE"]
        local = alloc.local_ptr(r.ptr)
        assert sym["LOCAL_PERCPU_START"] <= local < sym["LOCAL_PERCPU_END"]
        for cpu in range(4):
            # The local address on CPU n reaches the same physical byte as per_cpu_ptr(n).
            assert mapper.translate(local, cpu) == mapper.translate(alloc.per_cpu_ptr(r.ptr, cpu))


@pytest.mark.parametrize("local_percpu", [False, True], ids=["mainline", "patched"])
def test_walks_through_the_page_table_model_reach_each_units_page(local_percpu):
    # Issue 4: populating maps pages through the page-table model, so a walk of any
    # returned address on any CPU resolves to the right unit's page.
    cfg = KernelConfig(local_percpu=local_percpu)
    alloc, kpt = boot_percpu(cfg, 101464, 4)
    results = [alloc.alloc(4096, 4096) for _ in range(20)] + [alloc.alloc(8, reserved=True),
                                                              alloc.alloc(24, 8)]
    assert {r.chunk_id for r in results} >= {alloc.first_chunk.id, alloc.reserved_chunk.id}
    assert len({r.chunk_id for r in results}) >= 3  # dynamic chunks too
    for r in results:
        for cpu in range(4):
            want = alloc.phys_of(r.ptr, cpu)
            assert kpt.translate(cpu, alloc.per_cpu_ptr(r.ptr, cpu)) == want
            if local_percpu:
                assert kpt.translate(cpu, alloc.local_ptr(r.ptr)) == want
    assert kpt.check_invariants() == ()


def test_area_exhaustion_is_a_distinct_error():
    # 16K/36: PGDIR_SIZE 32M, so the Global Percpu area is 64M; 64 CPUs x 64K units take
    # 4M per chunk (unit PFN_ALIGN(20000 + 8192 + 28672) = 64K); the first chunk takes
    # the bottom 4M, so 15 more chunks fit.
    cfg = KernelConfig(page_size=16384, va_bits=36, local_percpu=True)
    alloc = PercpuAllocator(build_alloc_info(20000, nr_cpus=64, page_size=16384), cfg=cfg)
    assert alloc.unit_size == 65536
    with pytest.raises(AreaExhausted, match="no room for a new chunk"):
        for _ in range(10000):
            alloc.alloc(32768, 16384)
    assert len([c for c in alloc.chunks if c.kind == "dynamic"]) == 15


class DictMapper:
    """A page-granular VA -> PA map, shared or per CPU, for checking translations."""

    def __init__(self, page_size):
        self.page = page_size
        self.shared, self.local = {}, {}

    def map_pages(self, va, pa, size, cpu):
        table = self.shared if cpu is None else self.local.setdefault(cpu, {})
        for i in range(0, size, self.page):
            assert va + i not in table
            table[va + i] = pa + i

    def unmap_pages(self, va, size, cpu):
        table = self.shared if cpu is None else self.local[cpu]
        for i in range(0, size, self.page):
            del table[va + i]

    def translate(self, va, cpu=None):
        table = self.shared if cpu is None else self.local[cpu]
        page = va & ~(self.page - 1)
        return table[page] + (va - page)
