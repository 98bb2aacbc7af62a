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
# # The percpu allocator
#
# How does mm/percpu.c place the first chunk and later chunks, what offsets does it
# return, and how much room does the patch's Global Percpu area leave? The model agrees
# with real kernels decision for decision (`data/captures/`, last section).

# %%
from percpu_explorer import KernelConfig
from percpu_explorer.captures import compare, load_bundle
from percpu_explorer.kernel import format_size
from percpu_explorer.percpu import (
 PercpuAllocator,
 boot_lines,
 build_alloc_info,
 capacity_table,
 offset_extremes,
 run_history,
 synthetic_history,
)
from percpu_explorer.ui.plots import (
 chunk_map_heatmap,
 chunks_figure,
 offsets_figure,
 set_renderer,
)
from percpu_explorer.ui.tables import readable

set_renderer()
ai = build_alloc_info(101464, nr_cpus=4)  # Debian 6.12's static size, 4 CPUs
boot_lines(ai)

# %% [markdown]
# A boot-like history replayed on mainline (chunks at the top of vmalloc) and with the
# patch (chunks inside the Global Percpu area).

# %%
history = synthetic_history(3000, 600, seed=1)
mainline = PercpuAllocator(ai, cfg=KernelConfig())
decisions = run_history(mainline, history)
offsets_figure(decisions)

# %%
chunks_figure(mainline)

# %%
chunk_map_heatmap(mainline, mainline.first_chunk.id)

# %% [markdown]
# Try it: step through a history and watch chunks fill, populate and appear.

# %%
from percpu_explorer.ui.widgets import AllocatorExplorer

stepper = AllocatorExplorer()
stepper

# %%
patched = PercpuAllocator(ai, cfg=KernelConfig(local_percpu=True))
run_history(patched, history)
{name: {k: format_size(abs(v)) for k, v in offset_extremes(a).items()}
 for name, a in (("mainline", mainline), ("patched", patched))}

# %% [markdown]
# Dynamic percpu memory per CPU that fits, mainline (vmalloc) vs patched (Global Percpu
# area), for every configuration.

# %%
readable(capacity_table(cpu_counts=(64, 4096)))

# %% [markdown]
# A real kernel: Debian 6.12.117 booted under QEMU with percpu tracing. The model replays
# its trace and compares every decision and the final percpu_stats.

# %%
real = compare(load_bundle("../data/captures/debian-6.12.117-ptdump-a72-smp4"))
r = real.replay
(r.allocs_matched, r.allocs, r.frees_matched, r.frees, r.assumptions)

# %%
assert offset_extremes(mainline)["max_offset"] > 250 << 40  # "the whole vmalloc space"
assert abs(offset_extremes(patched)["min_offset"]) < 1 << 40
assert r.all_matched
