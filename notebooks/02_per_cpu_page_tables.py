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
#
# How do per-CPU kernel page tables (RFC patch 01/11) and the Local Percpu area (02/11)
# look, what does a translation walk through on each CPU, and what do they cost?
# Everything comes from `percpu_explorer.kernel` (`pgtable`, `walk`, `scenarios`); what it
# assumes about the unpublished patches is in those modules' docstrings and in `kernel.rfc`.

# %%
from percpu_explorer import KernelConfig
from percpu_explorer.kernel import (
                   build_first_chunk,
                   first_chunk_va,
                   format_walk,
                   pgtable_cost,
                   pgtable_geometry,
                   skip_rule_boundary,
                   sync_stream_table,
)
from percpu_explorer.ui.plots import page_tables_figure, set_renderer, walk_figure

set_renderer()
cfg = KernelConfig(local_percpu=True)  # 4K pages, 48-bit VA, kernel 7.1 with the patch
pgtable_geometry(cfg).table()

# %% [markdown]
# Four CPUs, the first chunk mapped: every CPU has its own root; the Local Percpu area's
# tables are private to each CPU, everything else is shared.

# %%
kpt = build_first_chunk(cfg, 4)
page_tables_figure(kpt)

# %% [markdown]
# The same local address, walked on CPU 2: it ends in CPU 2's own unit.

# %%
local_va, _ = first_chunk_va(kpt, 128 << 10)
walk = kpt.walk(2, local_va)
print(format_walk(walk))
walk_figure(walk, kpt.geometry)

# %% [markdown]
# Try it: pick a CPU and an address (the first chunk's local or global copy, vmalloc, or
# your own) and follow the walk.

# %%
from percpu_explorer.ui.widgets import PageTableExplorer

walker = PageTableExplorer(local_percpu=True)
walker

# %% [markdown]
# The patch's sync skip is `start >= LOCAL_PERCPU_START && end < LOCAL_PERCPU_END`: a
# mapping that ends exactly at LOCAL_PERCPU_END is not skipped.

# %%
boundary = skip_rule_boundary(cfg)
boundary

# %% [markdown]
# How often a PGD entry changes (and must be copied to every CPU) for a stream of 1024
# vmalloc areas of 1M, and what the roots cost with 4096 CPUs.

# %%
sync_stream_table([KernelConfig(local_percpu=True),
                   KernelConfig(page_size="64K", va_bits=42, local_percpu=True),
                   KernelConfig(page_size="16K", va_bits=36, local_percpu=True)],
                  nr_cpus=16, count=1024, size=1 << 20)

# %%
pgtable_cost(KernelConfig(local_percpu=True, nr_cpus=4096), 4096)

# %%
assert kpt.translate(2, local_va) != kpt.translate(1, local_va)  # each CPU its own copy
assert kpt.check_invariants() == ()
