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

# %%
from percpu_explorer import KernelConfig, compute_layout
from percpu_explorer.captures import failed_boot_finding
from percpu_explorer.kernel import configs_table, layout_finding, layout_table
from percpu_explorer.paths import CAPTURES_DIR
from percpu_explorer.ui.plots import address_space_map, set_renderer
from percpu_explorer.ui.tables import readable
from percpu_explorer.ui.text import caption, glossary, show_finding
from percpu_explorer.ui.widgets import LayoutExplorer, problems_details

set_renderer()  # figures survive in exported HTML as well as in JupyterLab
cfg = KernelConfig(page_size="4K", va_bits=48, nr_cpus=4)  # the series' base: v7.1
finding = layout_finding(cfg)
show_finding(finding, question=True)

# %%
glossary("VA bits", "vabits_actual", "linear map", "vmalloc", "vmemmap", "fixmap", "KASAN",
         "Global/Local Percpu area", "LOCAL_PERCPU_END", "PGD", "PGDIR_SIZE", "TTBR1",
         "log-size schematic")

# %% [markdown]
# ## The evidence: both layouts on one map
#
# Every number comes from the kernel's own macros (`asm/memory.h`, `pgtable.h`,
# `fixmap.h` and patch 02/11's additions to `pgtable.h`), evaluated by
# `percpu_explorer.kernel` for 4K pages, 48-bit VA and kernel 7.1, the series' base.

# %%
mainline = compute_layout(cfg)
patched = compute_layout(cfg.replace(local_percpu=True))
address_space_map(mainline, patched)

# %%
caption("left, every region in address order with a height of log2(bytes) - 19, so that "
        "the fixmap of a few megabytes shows beside the linear map of terabytes; right, the "
        "same regions true to scale. Dashed lines link the bounds of vmalloc, the one "
        "region the two areas move; grey bars are unused guard gaps. Hover a region for "
        "its exact bounds.")

# %% [markdown]
# The patched layout as memory.rst tabulates it (`last` is the inclusive end):

# %%
readable(layout_table(patched)[["use", "start", "last", "size"]])

# %% [markdown]
# ## Try it
#
# The controls offer only what arch/arm64/Kconfig allows for each page size and kernel.
# Switch local percpu on and off, change the page size or VA bits, and watch vmalloc
# shrink or the layout break; the title names the configuration drawn.

# %%
explorer = LayoutExplorer(local_percpu=True)
explorer

# %%
caption("the map of the configuration in the title; a layout with problems is drawn red, "
        "the panel counts the problems and the list under the map gives each one in the "
        "kernel's numbers.")

# %% [markdown]
# ## Every configuration the kernel allows
#
# How much vmalloc space the two areas take, and where they do not fit at all:

# %%
table = configs_table("7.1", kasan=("none",), nr_cpus=4)
sizes = ["PGDIR_SIZE", "PERCPU_SIZE", "vmalloc_mainline", "vmalloc_lost"]
readable(table[["config", *sizes, "patched_sane", "patched_problems"]], sizes=sizes)

# %% [markdown]
# ## Where the layout breaks
#
# With 16K pages and 48-bit VA one PGD entry covers half of the kernel's address space, so
# two areas of two entries each cannot fit:

# %%
broken_cfg = cfg.replace(page_size=16384)
broken = compute_layout(broken_cfg.replace(local_percpu=True))
show_finding(layout_finding(broken_cfg))

# %%
address_space_map(compute_layout(broken_cfg), broken)

# %%
caption("the patched column's red regions are those the problems name; the note under the "
        "plot counts the problems, and each red region's hover gives the kernel's numbers.")

# %%
problems_details(broken)

# %% [markdown]
# ## A real kernel with a broken layout
#
# Patch 02/11 compiled into Debian's own 4K/52 configuration and booted under QEMU on a
# 52-bit CPU (`make capture-all`), with KASLR and without: the model's problems, then what
# the kernel did.

# %%
boots = [failed_boot_finding(CAPTURES_DIR / f"debian-6.12.118-4k-52-patched-max-smp4{kaslr}")
         for kaslr in ("", "-nokaslr")]
show_finding(boots[0])

# %%
show_finding(boots[1])

# %%
assert explorer.error is None and explorer.updates >= 1
assert patched.symbols["PERCPU_SIZE"] == 1 << 40  # "It is 1TB with 4K page size"
assert finding.numbers["PERCPU_SIZE"] == 1 << 40 and finding.basis == "kernel arithmetic"
assert set(table.loc[~table["patched_sane"], "config"]) == set(finding.numbers["broken"]) == {
    "4K/52", "4K/52 (48-bit hw)", "16K/48", "16K/52", "16K/52 (47-bit hw)"}
assert broken.problems
assert all(f.basis == "real kernel" and f.numbers["problems"] for f in boots)
assert [f.numbers["how"] for f in boots] == ["exception loop", "panic"]
