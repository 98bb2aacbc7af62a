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
# # The percpu allocator, mainline and with the Global Percpu area

# %%
import pandas as pd

from percpu_explorer import KernelConfig
from percpu_explorer.captures import compare, load_bundle, replay_finding, replay_table
from percpu_explorer.paths import CAPTURES_DIR
from percpu_explorer.percpu import (
    PercpuAllocator,
    boot_lines,
    build_alloc_info,
    capacity_finding,
    capacity_table,
    offsets_finding,
    offsets_table,
    run_history,
    synthetic_history,
)
from percpu_explorer.ui.plots import (
    chunk_map_heatmap,
    chunks_figure,
    config_text,
    offsets_figure,
    set_renderer,
)
from percpu_explorer.ui.tables import readable
from percpu_explorer.ui.text import caption, glossary, show_finding
from percpu_explorer.ui.widgets import AllocatorExplorer

set_renderer()  # figures survive in exported HTML as well as in JupyterLab
pd.set_option("display.max_colwidth", None)  # table notes in full
ai = build_alloc_info(101464, nr_cpus=4)  # Debian 6.12's static percpu size, 4 CPUs
history = synthetic_history(3000, 600, seed=1)  # a boot-like request history
mainline = PercpuAllocator(ai, cfg=KernelConfig())
patched = PercpuAllocator(ai, cfg=KernelConfig(local_percpu=True))
decisions = run_history(mainline, history)
patched_decisions = run_history(patched, history)
bundle = load_bundle(CAPTURES_DIR / "debian-6.12.117-ptdump-a72-smp4")
real = compare(bundle)
offsets = offsets_finding(mainline, patched)
matched = replay_finding(real, bundle)
show_finding(offsets, question=True)

# %%
show_finding(matched, question=True)

# %%
glossary("first chunk", "unit", "chunk", "reserved chunk", "populated", "atom",
         "pcpu_base_addr", "slot", "block hints", "balance work", "vmalloc", "linear map",
         "Global/Local Percpu area", "PGDIR_SIZE", "capture", "basis")

# %% [markdown]
# ## The first chunk
#
# `pcpu_build_alloc_info()` sizes each CPU's unit from the static percpu variables
# (101464 bytes in Debian's 6.12 kernel), the reserved area (8K) and the dynamic reserve;
# the kernel logs the result at boot. The model prints the same lines:

# %%
print("\n".join(boot_lines(ai)))

# %% [markdown]
# ## Where the offsets go
#
# The same history replayed on both allocators. Mainline puts later chunks at the top of
# vmalloc, far above the first chunk in the linear map; with the patch they go into the
# Global Percpu area next to the first chunk.

# %%
offsets_figure(decisions, label=config_text(mainline))

# %%
caption("one dot per allocation at its offset from pcpu_base_addr, coloured by chunk; "
        "crosses are frees. The first chunk's allocations sit near 0, those in later chunks "
        "far higher, at the top of vmalloc. Drag the slider to move the cursor through the "
        "requests; hover a dot for its chunk, offset and address.")

# %%
offsets_figure(patched_decisions, label=config_text(patched))

# %%
caption("the same history with patch 02/11 (mind the y axis' unit): later chunks sit "
        "just below the first chunk, inside the Global Percpu area.")

# %% [markdown]
# The two allocators side by side (`min_offset`/`max_offset`: the lowest and highest
# offset of any chunk from pcpu_base_addr):

# %%
readable(offsets_table({"mainline": mainline, "patched": patched}))

# %% [markdown]
# ## The chunks and one chunk's allocation map

# %%
chunks_figure(mainline)

# %%
caption("one bar per chunk at its offset from pcpu_base_addr, spanning all its units, "
        "darker the fuller; the tick marks its start. Hover a bar for its base address, "
        "slot and free space.")

# %%
chunk_map_heatmap(mainline, mainline.first_chunk.id)

# %%
caption("the first chunk's allocation map, one row per page of a unit: dark cells are "
        "allocated, grey ones hold the static and reserved areas; the left strip shows "
        "populated pages, the orange and green lines each page's block hints.")

# %% [markdown]
# ## Try it: step through a history
#
# Move the request slider: the figure follows the request, showing the chunk it touched
# with the area it allocated (green) or freed (purple) outlined, and the title says what
# it did. Pick a chunk to pin it; switch the view to see every chunk in the VA space. The
# panel's page size, VA bits, CPUs, kernel and local percpu change where chunks go and
# how big they are.

# %%
explorer = AllocatorExplorer()
explorer

# %%
caption("the title names the request shown (its number of all, what it did, where) and "
        "the configuration; the outlined area is that request's. A chunk that does not "
        "exist at the chosen request is named in the title and the panel.")

# %% [markdown]
# ## How much fits
#
# Dynamic percpu memory per CPU, mainline (vmalloc) against the patch (the Global Percpu
# area), for every configuration the kernel allows:

# %%
capacity = capacity_table(cpu_counts=(64, 4096))
show_finding(capacity_finding(capacity))

# %%
readable(capacity[["config", "nr_cpus", "chunk_span", "mainline_bytes_per_cpu",
                   "area_size", "patched_chunks", "patched_bytes_per_cpu",
                   "patched_layout"]])

# %% [markdown]
# ## A real kernel
#
# Debian 6.12.117 booted under QEMU with percpu tracing (`data/captures/`): the model
# replays the kernel's trace and compares every decision and the final percpu_stats (the
# second answer at the top). Check by check:

# %%
readable(replay_table(real))

# %%
assert offsets.numbers["mainline_max_offset"] > offsets.numbers["vmalloc_size"]
assert offsets.numbers["inside"]
assert real.replay is not None and real.replay.all_matched
assert explorer.error is None and explorer.current is not None
