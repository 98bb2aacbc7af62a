"""debugfs percpu_stats as mm/percpu-stats.c prints it."""

from percpu_explorer.percpu.allocator import PercpuAllocator
from percpu_explorer.percpu.first_chunk import build_alloc_info


def test_percpu_stats_text_layout():
    alloc = PercpuAllocator(build_alloc_info(101464, nr_cpus=4))
    alloc.alloc(40)
    lines = alloc.percpu_stats_text().splitlines()
    # mm/percpu-stats.c: headers, "  %-20s: %12lld" rows, reserved chunk first.
    assert lines[:3] == ["Percpu Memory Statistics", "Allocation Info:", "-" * 40]
    assert lines[3] == "  unit_size           :       139264"
    assert "Chunk: <- Reserved Chunk" in lines and "Chunk: <- First Chunk" in lines
    i = lines.index("Chunk: <- First Chunk")
    assert lines[i + 1] == "  nr_alloc            :            1"
    assert lines[i + 5] == f"  free_bytes          : {29608 - 40:12d}"
