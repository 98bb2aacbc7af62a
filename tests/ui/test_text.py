"""The words on the page: escaped, with their basis, folded glossary."""

from percpu_explorer.findings import Finding
from percpu_explorer.ui.text import caption, glossary, show_finding


def test_a_finding_shows_question_answer_and_basis_escaped():
    f = Finding("Does <it> fit?", "No: 3 > 2.", "kernel arithmetic")
    page = show_finding(f, question=True).data
    assert "Does &lt;it&gt; fit?" in page and "No: 3 &gt; 2." in page
    assert "[kernel arithmetic]" in page


def test_caption_and_glossary():
    assert "How to read it:" in caption("bars are regions").data
    folded = glossary("TTBR1", "LSE").data
    assert folded.startswith("<details") and "TTBR1" in folded and "LDADD" in folded
