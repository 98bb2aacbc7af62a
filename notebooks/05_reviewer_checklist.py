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
# Every checkable claim of "Optimize this_cpu_*() ops for non-x86 (ARM64 for this series)",
# evaluated by the models (layout, page tables, allocator, ops, real-kernel captures) in
# every configuration of the series' base kernel, never written by hand. The answer first:

# %%
from IPython.display import Markdown, display

from percpu_explorer.claims import (
    checklist_finding,
    claims_summary,
    evaluate_claims,
    format_claims,
)
from percpu_explorer.ui.tables import readable
from percpu_explorer.ui.text import glossary, show_finding

KERNEL = "7.1"
claims = evaluate_claims(KERNEL)
finding = checklist_finding(claims, KERNEL)
show_finding(finding, question=True)

# %%
glossary("holds / fails", "holds with caveat", "cannot hold", "holds if / fails if",
         "not checked", "basis", "capture", "sys time", "Global/Local Percpu area", "PGDIR_SIZE",
         "CnP", "KPTI", "software PAN", "LSE", "LL/SC", "preempt count",
         "PREEMPT_FULL / PREEMPT_LAZY")

# %% [markdown]
# Every row says what it stands on. **Kernel arithmetic**: computed with the kernel's own
# formulas for that configuration. **Real kernel**: seen in a capture of a booted Debian
# 6.12 kernel. **Measured**: counted in a real kernel run (a census of this_cpu sites).
# **Assumption**: rests on what the unpublished patches (01, 03-11) are assumed to do,
# named in the row. **Estimate**: rests on estimated instruction costs, named in the row
# with the cost at which the verdict would flip. Only the first three give a bare *holds* /
# *fails* / *cannot hold*; the others read "holds if ...", "fails if ...".
#
# ## One row per claim
#
# Its verdicts counted over the configurations (and captures), per basis, and where it
# fails.

# %%
(readable(claims_summary(claims)).style.hide(axis="index").format(escape="html")
 .set_properties(**{"text-align": "left"})
 .set_table_styles([{"selector": "th", "props": "text-align: left"}]))

# %% [markdown]
# ## Every row, claim by claim
#
# Open a claim to see its row for each configuration: the verdict, the evidence with its
# numbers, and the model functions it comes from. The preemption rows state both worlds:
# the series' base, where from v7.0 arm64 builds only PREEMPT_FULL/LAZY/RT and the bracket
# is real work, and today's Debian 6.12, built PREEMPT_VOLUNTARY without a preempt count,
# where the bracket is a compiler barrier. `format_claims(claims, "markdown",
# group_by_basis=True)` gives the same rows grouped by basis, ready for a review mail.

# %%
display(Markdown(format_claims(claims, "markdown", fold_claims=True)))

# %%
area = claims[(claims.claim_id == "1") & (claims.config == "4K/48")].iloc[0]
assert (area.basis, area.verdict) == ("kernel arithmetic", "holds")  # "1TB with 4K page size"
assert set(claims[claims.verdict == "cannot hold"].config) >= {"4K/52", "16K/48", "16K/52"}
assert {"4K/52", "16K/48", "16K/52"} <= set(finding.numbers["cannot_fit_configs"])
skip = claims[(claims.claim_id == "7") & (claims.config == "4K/48")].iloc[0]
assert skip.basis == "assumption" and skip.numbers["at_end_after_setup"] == 0  # latent
debian = claims[(claims.claim_id == "9c") & claims.config.str.contains("capture")]
assert (debian.basis == "real kernel").all() and (debian.verdict == "fails").all()
# kernel symbols survive Markdown: raw_cpu_*/__this_cpu_* is escaped, not read as emphasis
assert r"raw\_cpu\_\*/\_\_this\_cpu\_\*" in format_claims(claims, "markdown")
