"""Findings carry a basis the standards know; the glossary covers the words issue 14 found
unexplained and the verdict words."""

import pytest

from percpu_explorer.findings import BASES, Finding
from percpu_explorer.glossary import TERMS, terms


def test_a_finding_refuses_an_unknown_basis():
    with pytest.raises(ValueError, match="basis 'guess' is not one of kernel arithmetic"):
        Finding("q?", "a.", "guess")


def test_a_finding_says_what_it_stands_on():
    f = Finding("How big?", "Each area is 1TB.", "kernel arithmetic", {"size": 1 << 40})
    assert f.text() == "Each area is 1TB. (Basis: kernel arithmetic.)"
    assert set(BASES) >= {"kernel arithmetic", "real kernel", "assumption", "estimate"}


def test_the_glossary_explains_the_jargon_of_the_notebooks():
    for word in ("TTBR1", "nG", "CnP", "LSE", "LL/SC", "log-size schematic", "holds / fails",
                 "cannot hold", "holds if / fails if"):
        assert word in TERMS and len(TERMS[word]) > 40
    assert list(terms("nG", "CnP")) == ["nG", "CnP"]
    with pytest.raises(ValueError, match="no glossary entry for \\['TLA'\\]"):
        terms("TLA")
