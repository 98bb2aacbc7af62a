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
# # The arm64 kernel address space, mainline and with the local percpu areas
#
# Where does each region of the arm64 kernel's virtual address space lie for a given
# configuration, and what does RFC patch 02/11 ("arm64: mm: define percpu virtual space
# area") change? Every number below comes from the kernel's own macros
# (`asm/memory.h`, `pgtable.h`, `fixmap.h`), evaluated by `percpu_explorer.kernel` (`layout.py`).

# %%
from percpu_explorer import KernelConfig, compute_layout
from percpu_explorer.kernel import configs_table, layout_table
from percpu_explorer.ui.plots import address_space_map, set_renderer
from percpu_explorer.ui.tables import readable

set_renderer()  # figures survive in exported HTML as well as in JupyterLab

cfg = KernelConfig(page_size="4K", va_bits=48)  # the series' base: v7.1, 4K pages, 48-bit VA
mainline = compute_layout(cfg)
readable(layout_table(mainline))

# %% [markdown]
# With the patch, two areas of `2 * PGDIR_SIZE` each sit below vmemmap, and vmalloc ends
# 8M below them. With 4K pages a PGD entry covers 512GB, so each area is 1TB.

# %%
patched = compute_layout(cfg.replace(local_percpu=True))
readable(layout_table(patched))

# %% [markdown]
# On a map: sizes from 8M to petabytes on a log scale beside the true scale; what moved or
# shrank is linked, and a problem would be drawn in red.

# %%
address_space_map(mainline, patched)

# %% [markdown]
# Try it: the controls offer only what arch/arm64/Kconfig allows for each page size and
# kernel; switch the local percpu area on and watch vmalloc shrink or the layout break.

# %%
from percpu_explorer.ui.widgets import LayoutExplorer

explorer = LayoutExplorer(local_percpu=True)
explorer

# %% [markdown]
# The same question for every configuration the kernel allows: how much vmalloc space the
# two areas take, and where they do not fit at all.

# %%
table = configs_table("7.1", kasan=("none",))
sizes = ["PGDIR_SIZE", "PERCPU_SIZE", "vmalloc_mainline", "vmalloc_lost"]
readable(table[["config", *sizes, "patched_sane", "patched_problems"]], sizes=sizes)

# %% [markdown]
# Where the layout breaks, the model says why, in the kernel's own numbers:

# %%
broken_cfg = KernelConfig(page_size="16K", va_bits=48)
broken = compute_layout(broken_cfg.replace(local_percpu=True))
address_space_map(compute_layout(broken_cfg), broken)

# %%
assert explorer.error is None and explorer.updates >= 1
assert patched.symbols["PERCPU_SIZE"] == 1 << 40  # "It is 1TB with 4K page size"
assert set(table.loc[~table["patched_sane"], "config"]) == {
    "4K/52", "4K/52 (48-bit hw)", "16K/48", "16K/52", "16K/52 (47-bit hw)"}
