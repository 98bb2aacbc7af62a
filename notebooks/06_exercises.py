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
# # Exercises
#
# Can you predict what the kernel does? Translate a local percpu address on a given CPU,
# predict the offset of the next percpu allocation, and find what a preempted update
# leaves behind. Every set is drawn from a seed (give the class one seed); the answers
# come from the models and stay folded until you check a right answer or open them.

# %%
from percpu_explorer.ui.text import glossary
from percpu_explorer.ui.widgets import ExerciseSheet

SEED = 2026  # the seed field below draws other sets
sheet = ExerciseSheet(SEED, count=3)
sheet.summary

# %%
glossary("seed", "Global/Local Percpu area", "first chunk", "unit", "first fit",
         "this_cpu_*()", "__this_cpu_*() / raw_cpu_*()", "tpidr_el1", "VHE",
         "PREEMPT_FULL / PREEMPT_LAZY", "lost update / misplaced", "basis")

# %% [markdown]
# Type a seed and press Enter for another set, or choose how many questions. Each question
# shows everything it takes to answer it. Type your answer and press **Check** (or Enter):
# addresses and bit patterns in hex, with or without 0x, in any case, spaces allowed;
# offsets and values as whole numbers. A wrong answer is rejected, often with what it
# misses; a right one opens the worked answer, which also opens on request.

# %%
sheet.widget

# %%
assert [e.kind for e in sheet.exercises] == ["translate", "next offset", "lost update"]
assert all(card.solution.selected_index is None for card in sheet.cards)  # folded
assert all(e.check(e.answer).right for e in sheet.exercises)
