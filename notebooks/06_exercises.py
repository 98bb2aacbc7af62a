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
# predict the offset of the next percpu allocation, and find where an update gets lost.
# Every exercise is drawn from a seed (give the class one seed); the answers come from the
# models and stay folded until you open them.

# %%
from IPython.display import HTML, display

from percpu_explorer.exercises import exercise_set

SEED = 2026  # change it for a new set
exercises = exercise_set(SEED, count=6)
for exercise in exercises:
    display(HTML(exercise.as_html()))

# %%
assert [e.kind for e in exercises[:3]] == ["translate", "next offset", "lost update"]
