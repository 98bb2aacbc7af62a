"""The first chunk against mm/percpu.c's pcpu_build_alloc_info() and the boot lines of
real kernels."""

from percpu_explorer.percpu.first_chunk import PercpuBuild, boot_lines, build_alloc_info


def test_boot_lines_of_a_4_cpu_v6_12_kernel():
    # Issue 4: with 4K pages, 4 CPUs and a static size of 101464 bytes a v6.12 kernel
    # prints "percpu: Embedded 34 pages/cpu s101464 r8192 d29608 u139264".
    # PFN_ALIGN(101464 + 8192 + 28672) = 139264 = 34 pages; d = 139264 - 101464 - 8192.
    ai = build_alloc_info(101464, nr_cpus=4, page_size=4096)
    assert boot_lines(ai) == [
        "percpu: Embedded 34 pages/cpu s101464 r8192 d29608 u139264",
        "pcpu-alloc: s101464 r8192 d29608 u139264 alloc=34*4096",
        "pcpu-alloc: [0] 0 [0] 1 [0] 2 [0] 3 ",
    ]


def test_boot_lines_with_a_2m_atom_pack_eight_units_per_allocation():
    # An x86-64 dmesg (atom PMD_SIZE): "percpu: Embedded 52 pages/cpu s173272 r8192 d31528
    # u262144" and "pcpu-alloc: s173272 r8192 d31528 u262144 alloc=1*2097152" with
    # "[0] 0 1 2 3 4 5 6 7": 2M / 212992 -> 9 units, not a divisor; 8 units of 256K.
    ai = build_alloc_info(173272, nr_cpus=8, atom_size=2 << 20)
    assert boot_lines(ai) == [
        "percpu: Embedded 52 pages/cpu s173272 r8192 d31528 u262144",
        "pcpu-alloc: s173272 r8192 d31528 u262144 alloc=1*2097152",
        "pcpu-alloc: [0] 0 1 2 3 4 5 6 7 ",
    ]


def test_numa_groups_and_line_wrapping():
    # Two nodes of 16 CPUs: group width 1, cpu width 2, upa 1 -> width 1*3 + 1 + 3 = 7,
    # allocations per line = rounddown_pow_of_two(60 / 7 = 8) = 8 (pcpu_dump_alloc_info).
    ai = build_alloc_info(101464, nr_cpus=32, cpu_to_node=[c // 16 for c in range(32)])
    assert [g.cpu_map for g in ai.groups] == [tuple(range(16)), tuple(range(16, 32))]
    assert ai.groups[1].base_offset == 16 * ai.unit_size
    lines = boot_lines(ai)
    assert lines[2] == "pcpu-alloc: " + "".join(f"[0] {c:02d} " for c in range(8))
    assert lines[4] == "pcpu-alloc: " + "".join(f"[1] {c:02d} " for c in range(16, 24))
    assert len(lines) == 6


def test_debian_like_build_options_change_the_reserves():
    # include/linux/percpu.h: CONFIG_RANDOM_KMALLOC_CACHES makes PERCPU_DYNAMIC_SIZE_SHIFT 12
    # (reserve 28 << 12), CONFIG_MEM_ALLOC_PROFILING makes PERCPU_MODULE_RESERVE 8 << 13.
    build = PercpuBuild(random_kmalloc_caches=True, mem_alloc_profiling=True)
    ai = build_alloc_info(101464, nr_cpus=4, build=build)
    assert ai.reserved_size == 65536
    assert ai.size_sum == -(-(101464 + 65536 + (28 << 12)) // 4096) * 4096


def test_small_static_size_gets_the_minimum_unit():
    # PCPU_MIN_UNIT_SIZE = PFN_ALIGN(32K); dyn grows to PERCPU_DYNAMIC_EARLY_SIZE at least.
    ai = build_alloc_info(1000, nr_cpus=2, dyn_size=0)
    assert ai.dyn_size == -(-(1000 + 8192 + (20 << 10)) // 4096) * 4096 - 1000 - 8192
    assert ai.unit_size == 32768
