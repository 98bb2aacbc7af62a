# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     notebook_metadata_filter: kernelspec,-jupytext.text_representation
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Per-CPU kernel page tables

# %%
from percpu_explorer import KernelConfig
from percpu_explorer.kernel import (
    build_first_chunk,
    first_chunk_unit,
    first_chunk_va,
    format_walk,
    page_tables_finding,
    pgtable_cost_finding,
    pgtable_cost_table,
    pgtable_geometry,
    shared_tlb_answer,
    skip_rule_finding,
    skip_rule_table,
    sync_stream_finding,
    sync_stream_table,
)
from percpu_explorer.ui.plots import page_tables_figure, set_renderer, walk_figure
from percpu_explorer.ui.tables import readable
from percpu_explorer.ui.text import caption, glossary, show_finding
from percpu_explorer.ui.widgets import PageTableExplorer

set_renderer()
cfg = KernelConfig(local_percpu=True, nr_cpus=4)  # 4K pages, 48-bit VA, kernel 7.1, 4 CPUs
finding = page_tables_finding(cfg)
show_finding(finding, question=True)

# %%
glossary("TTBR1", "swapper_pg_dir", "PGD", "PGDIR_SIZE", "Global/Local Percpu area",
         "LOCAL_PERCPU_END", "first chunk", "unit", "vmalloc", "arch_sync_kernel_mappings()",
         "nG", "CnP", "basis")

# %% [markdown]
# Only patch 02/11 of the series is in hand; what the model takes from patch 01/11 (one
# root per CPU, the sync) and where it places the first chunk are assumptions, named in
# each answer's basis and in `percpu_explorer.kernel.rfc`. The levels a 4K/48 kernel
# walks:

# %%
readable(pgtable_geometry(cfg).table())

# %% [markdown]
# ## The evidence: tables per CPU, and one walk
#
# Four CPUs with the first chunk mapped: every CPU but CPU 0 has its own root; the Local
# Percpu area's tables are private to each CPU, everything else is shared.

# %%
kpt = build_first_chunk(cfg)
page_tables_figure(kpt)

# %%
caption("left, the table pages of each level, shared (blue) or private to one CPU "
        "(orange); right, the pages each CPU's walks can reach. CPU 0 walks from "
        "swapper_pg_dir, the others from a root of their own.")

# %% [markdown]
# The first chunk's Local Percpu address, walked on CPU 2: it ends in CPU 2's own unit.

# %%
local_va, _ = first_chunk_va(kpt, first_chunk_unit(cfg.page_size))
walk = kpt.walk(2, local_va)
walk_figure(walk, kpt.geometry, nr_cpus=kpt.nr_cpus, address="Local Percpu (first chunk)")

# %%
caption("one row per level, root first: the bar is the level's table (orange: private to "
        "the CPU), the dot the entry read at its index; the title gives the physical "
        "address the walk ends at. The same walk as the crash utility's vtop prints it "
        "follows.")

# %%
print(format_walk(walk))

# %% [markdown]
# ## Try it
#
# Pick a CPU and an address (the first chunk's unit in the linear map, its Local or
# Global Percpu copy, VMALLOC_START, or type your own) and follow the walk. A layout whose
# areas do not fit has no tables to walk: the panel says why and goes back.

# %%
walker = PageTableExplorer(local_percpu=True)
walker

# %%
caption("the walk of the chosen address on the chosen CPU, for the configuration in the "
        "title; a red cross marks the level where the walk faults.")

# %% [markdown]
# ## The sync skip at LOCAL_PERCPU_END
#
# Patch 02/11 skips the copy of root entries for a mapping with
# `start >= LOCAL_PERCPU_START && end < LOCAL_PERCPU_END`. The `end` it receives is
# exclusive, so a mapping that ends exactly at the top of the area is not skipped:

# %%
show_finding(skip_rule_finding(cfg))

# %%
readable(skip_rule_table(cfg))

# %% [markdown]
# ## How often the roots are synced
#
# A root entry changes, and must be copied to every CPU, only when a mapping needs a new
# one: a stream of 1024 vmalloc areas of 1MB on 4 CPUs, for three sizes of root entry.

# %%
stream = [cfg, KernelConfig(page_size="64K", va_bits=42, local_percpu=True, nr_cpus=4),
          KernelConfig(page_size="16K", va_bits=36, local_percpu=True, nr_cpus=4)]
show_finding(sync_stream_finding(stream, nr_cpus=4, count=1024, size=1 << 20))

# %%
readable(sync_stream_table(stream, nr_cpus=4, count=1024, size=1 << 20))

# %% [markdown]
# ## What the extra tables cost
#
# The first chunk's page tables on 4096 CPUs, the most arm64 builds (CONFIG_NR_CPUS):

# %%
big = cfg.replace(nr_cpus=4096)
cost = pgtable_cost_finding(big)
show_finding(cost)

# %%
readable(pgtable_cost_table(big))

# %% [markdown]
# ## Why CnP must stay clear
#
# Kernel mappings are global, so a TLB entry for a Local Percpu address does not say
# which CPU's tables it came from:

# %%
show_finding(shared_tlb_answer(cfg))

# %%
assert finding.numbers["own_copy"] and kpt.check_invariants() == ()
assert kpt.translate(2, local_va) != kpt.translate(1, local_va)  # each CPU its own copy
assert walker.error is None and walker.updates >= 1
assert cost.numbers["patched_private_pages"] == 4095 + 3 * 4096  # a root + 3 tables per CPU
