"""Words on the page: a finding as a sentence with its basis, a caption under a figure, the
glossary as a folded cell. Each returns an IPython display object (HTML)."""

from __future__ import annotations

import html

from IPython.display import HTML

from ..findings import BASES, Finding
from ..glossary import terms

__all__ = ["caption", "glossary", "show_finding"]

_BASIS_COLOUR = {"kernel arithmetic": "#1f77b4", "real kernel": "#2ca02c",
                 "measured": "#2ca02c", "assumption": "#b35900", "estimate": "#9467bd"}


def show_finding(finding: Finding, *, question: bool = False) -> HTML:
    """The answer in bold type, its basis as a coloured tag; with question=True the
    question first (a notebook's opening cell)."""
    colour = _BASIS_COLOUR.get(finding.basis, "#444")
    basis = html.escape(finding.basis)
    detail = f": {html.escape(finding.detail)}" if finding.detail else ""
    parts = []
    if question:
        parts.append(f"<p class='pe-question'><b>Question.</b> "
                     f"{html.escape(finding.question)}</p>")
    title = html.escape(BASES[finding.basis])
    parts.append(
        f"<p class='pe-finding'><b>Answer.</b> {html.escape(finding.answer)} "
        f"<span class='pe-basis' style='color:{colour}' title='{title}'>"
        f"[{basis}{detail}]</span></p>")
    return HTML("".join(parts))


def caption(text: str) -> HTML:
    """A one-line caption under a figure: how to read it."""
    return HTML(f"<p class='pe-caption' style='font-size:90%;color:#555;margin-top:0'>"
                f"<i>How to read it:</i> {html.escape(text)}</p>")


def glossary(*names: str) -> HTML:
    """A folded "Words used here" list of the glossary entries `names`."""
    items = "".join(f"<dt><b>{html.escape(n)}</b></dt><dd>{html.escape(d)}</dd>"
                    for n, d in terms(*names).items())
    return HTML(f"<details class='pe-glossary'><summary>Words used here</summary>"
                f"<dl>{items}</dl></details>")
