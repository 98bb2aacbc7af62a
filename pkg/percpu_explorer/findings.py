"""A finding: the answer to a notebook's question in one or two sentences, with the numbers
behind it and what it stands on.

Every folder computes its own findings from its models (`kernel.layout_finding`, ...);
the views only show them (`ui.text.show_finding`). The sentences carry formatted numbers
(hex addresses, KB/MB/GB/TB sizes); `numbers` keeps the raw values so a test can hold the
sentence to the model. This module imports nothing from the package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BASES", "Finding"]

# What a number or verdict stands on (DEVELOPERS' standards).
BASES: dict[str, str] = {
    "kernel arithmetic": "computed with the kernel's own formulas for this configuration",
    "real kernel": "seen in a capture of a booted kernel",
    "assumption": "rests on what the unpublished patches are assumed to do (named)",
    "estimate": "rests on estimated instruction costs (named)",
    "measured": "counted in a real kernel run",
}


@dataclass(frozen=True)
class Finding:
    """question: what the notebook asks; answer: one or two sentences with the model's
    numbers; basis: a key of `BASES`; detail: what the basis is (the assumption or cost
    named), optional; numbers: the raw values the sentences print."""

    question: str
    answer: str
    basis: str
    numbers: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""

    def __post_init__(self) -> None:
        if self.basis not in BASES:
            raise ValueError(f"basis {self.basis!r} is not one of {', '.join(BASES)}")

    def text(self) -> str:
        """The answer and its basis as plain text."""
        basis = f"{self.basis}: {self.detail}" if self.detail else self.basis
        return f"{self.answer} (Basis: {basis}.)"
