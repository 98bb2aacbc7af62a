# ruff: noqa: E501  (the samples keep the kernel's own line lengths)
"""Texts in the kernel's own formats, small enough to read: a ptdump, percpu_stats and
/proc/vmallocinfo."""

# Lines in the format of arch/arm64/mm/ptdump.c note_page(): "0x%016lx-0x%016lx   ",
# "%9lu%c %s" (size, unit, level) and " %s" per attribute; markers "---[ %s ]---".
PTDUMP = """\
---[ Linear Mapping start ]---
0xffff000000000000-0xffff000040000000           1G PUD
0xffff000040000000-0xffff000040200000           2M PMD       RW NX SHD AF NG         BLK UXN    MEM/NORMAL-TAGGED
0xffff000040200000-0xffff000040210000          64K PTE       ro NX SHD AF NG    CON     UXN    MEM/NORMAL
---[ Linear Mapping end ]---
---[ Modules start ]---
0xffff800000000000-0xffff800080000000           2G PUD
---[ Modules end ]---
---[ vmalloc() area ]---
0xffff800080000000-0xffff800080005000          20K PTE       RW NX SHD AF NG             UXN    MEM/NORMAL
---[ Fixmap end ]---
0xffffffffff800000-0x0000000000000000           8M PGD
"""

PERCPU_STATS = """\
Percpu Memory Statistics
Allocation Info:
----------------------------------------
  unit_size           :       139264
  static_size         :       101464
  reserved_size       :         8192
  dyn_size            :        29608
  atom_size           :         4096
  alloc_size          :       139264

Global Stats:
----------------------------------------
  nr_alloc            :         3460
  nr_dealloc          :         3067
  nr_cur_alloc        :          393
  nr_max_alloc        :         1500
  nr_chunks           :            3
  nr_max_chunks       :            4
  min_alloc_size      :            4
  max_alloc_size      :         4096
  empty_pop_pages     :            5

Per Chunk Stats:
----------------------------------------
Chunk: <- Reserved Chunk
  nr_alloc            :            2
  max_alloc_size      :           64
  empty_pop_pages     :            0
  first_bit           :            8
  free_bytes          :         8064
  contig_bytes        :         8064
  sum_frag            :            0
  max_frag            :            0
  cur_min_alloc       :           64
  cur_med_alloc       :           64
  cur_max_alloc       :           64

Chunk: <- First Chunk
  nr_alloc            :          300
  free_bytes          :          -12

Chunk (sidelined):
  nr_alloc            :            1

Chunk:
  nr_alloc            :            7
"""

VMALLOCINFO = """\
0xffff800080000000-0xffff800080005000   20480 start_kernel+0x364/0x820 pages=4 vmalloc N0=4
0xffff800080005000-0xffff800080007000    8192 __ioremap_prot+0x70/0xb8 phys=0x0000000008020000 ioremap
0xffff800080008000-0xffff80008000c000   16384 unpurged vm_area
0xffff80008000c000-0xffff80008000e000    8192 vm_map_ram
0xffffc1ffbf778000-0xffffc1ffbf800000  557056 pcpu_get_vm_areas+0x0/0x1120 vmalloc brand-new-flag
"""
