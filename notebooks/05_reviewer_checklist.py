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
# # Reviewer's checklist for the RFC series
#
# Which claims of "Optimize this_cpu_*() ops for non-x86 (ARM64 for this series)" hold,
# for which arm64 configurations, and on what evidence? Each verdict is computed by the
# models (layout, page tables, allocator, ops, real-kernel captures), never written by hand.
#
# Every row says what it stands on. **Kernel arithmetic**: computed with the kernel's own
# formulas for that configuration. **Real kernel**: seen in a capture of a booted Debian
# 6.12 kernel. **Assumption**: rests on what the unpublished patches (01, 03-11) are
# assumed to do, named in the row (`rfc.DEFAULT_PLACEMENT`, patch 01/11's sync mask,
# `ops.DEFAULT_LOCAL_SCHEME`, ...). **Estimate**: rests on estimated instruction costs,
# named in the row with the cost at which the verdict would flip. Only the first two give
# a bare *holds* / *fails* / *cannot hold*; the others read "holds if ...", "fails if ...".

# %%
from IPython.display import Markdown

from percpu_explorer.claims import basis_counts, evaluate_claims, format_claims

claims = evaluate_claims("7.1")
basis_counts(claims)

# %% [markdown]
# The checklist by grade, hard findings first, ready to paste into a review mail. The
# preemption rows state both worlds: the series' base, where from v7.0 arm64 builds only
# PREEMPT_FULL/LAZY/RT and the bracket is real work, and today's Debian 6.12, built
# PREEMPT_VOLUNTARY without a preempt count, where the bracket is a compiler barrier.

# %%
Markdown(format_claims(claims, "markdown", group_by_basis=True))

# %%
area = claims[(claims.claim_id == "1") & (claims.config == "4K/48")].iloc[0]
assert (area.basis, area.verdict) == ("kernel arithmetic", "holds")  # "1TB with 4K page size"
assert set(claims[claims.verdict == "cannot hold"].config) >= {"4K/52", "16K/48", "16K/52"}
skip = claims[(claims.claim_id == "7") & (claims.config == "4K/48")].iloc[0]
assert skip.basis == "assumption" and skip.numbers["at_end_after_setup"] == 0  # latent
debian = claims[(claims.claim_id == "9c") & claims.config.str.contains("capture")]
assert (debian.basis == "real kernel").all() and (debian.verdict == "fails").all()
