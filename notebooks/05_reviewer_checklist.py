# %% [markdown]
# # Reviewer's checklist for the RFC series
#
# Which claims of "Optimize this_cpu_*() ops for non-x86 (ARM64 for this series)" hold,
# for which arm64 configurations, and on what evidence? Each verdict is computed by the
# models (layout, page tables, allocator, ops, real-kernel captures), never written by hand.

# %%
from IPython.display import Markdown

from percpu_explorer.claims import evaluate_claims, format_claims, verdict_counts

claims = evaluate_claims("7.1")
verdict_counts(claims)

# %% [markdown]
# The whole table, ready to paste into a review mail:

# %%
Markdown(format_claims(claims, "markdown"))

# %%
area = claims[(claims.claim_id == "1") & (claims.config == "4K/48")].iloc[0]
assert area.verdict == "holds"  # "It is 1TB with 4K page size"
assert set(claims[claims.verdict == "cannot hold"].config) >= {"4K/52", "16K/48", "16K/52"}
