"""01_address_space in Chromium, as a student and a teacher read it: in JupyterLab (every
cell run) and as a Voila dashboard. The answer leads with the model's numbers, every
figure has its caption, every panel control changes the map and its title says what is
drawn, and a broken layout is drawn red with a one-line count and a folded list."""

import json

import pytest

from percpu_explorer import KernelConfig, compute_layout
from percpu_explorer.kernel import fmt_addr, format_size, layout_finding

from .helpers import (
    FIGURE,
    assert_clean_page,
    assert_readable_tables,
    figure_title,
    notebook_root,
    open_dashboard,
    open_in_lab,
    read_all,
    scroll_to,
    select,
    set_checkbox,
    set_text,
    wait_figure,
    wait_title,
)

pytestmark = pytest.mark.browser

NOTEBOOK = "01_address_space.ipynb"
LOCAL = "local percpu (RFC 02/11)"
CFG = KernelConfig(page_size="4K", va_bits=48, nr_cpus=4)  # the notebook's configuration


def show_explorer(page):
    """Scroll the explorer's figure into view for the next screenshot."""
    scroll_to(page, notebook_root(page).locator(FIGURE))


def check_reading(page, console):
    """The question and the answer lead, with the model's numbers; captions and the
    glossary are there; the broken layout's problems are folded, not a page of text."""
    finding = layout_finding(CFG)
    text = read_all(page, console)
    assert finding.question in text and finding.answer in text
    n = finding.numbers
    for number in (format_size(n["PERCPU_SIZE"]), fmt_addr(n["PERCPU_START"]),
                   fmt_addr(n["LOCAL_PERCPU_END"]), format_size(n["vmalloc_lost"]),
                   f"{len(n['broken'])} of the {n['configs']} configurations"):
        assert number in text, number
    assert f"Question. {finding.question} Answer. With 4K/48, kernel 7.1" in text
    assert f"{finding.answer} [kernel arithmetic: {finding.detail}]" in text
    assert text.count("How to read it:") == 3  # one caption under each of the 3 figures
    assert "Words used here" in text
    broken = layout_finding(CFG.replace(page_size=16384))
    assert broken.answer in text
    folded = scroll_to(page, notebook_root(page).locator(
        ".jp-OutputArea-output details.pe-problems"))
    assert "7 problems" in folded.locator("summary").inner_text()
    assert not folded.locator("li").first.is_visible()  # folded until a reader opens it


def exercise_controls(page, shot, where):
    """Each panel control changes the explorer's figure and its title names the choice;
    16K/48 with local percpu draws the broken layout, counted in one line in the panel."""
    show_explorer(page)
    first = wait_figure(page)
    title = figure_title(page)
    assert title.startswith("Kernel address space, 4K/48, kernel 7.1, 4 CPUs<br><sup>"
                            "mainline vs patched"), title
    show_explorer(page)
    shot(f"{where}-explorer")

    steps = [  # (what a person does, what the title then says)
        (lambda: set_checkbox(page, LOCAL, False), "4K/48, kernel 7.1, 4 CPUs<br><sup>red"),
        (lambda: select(page, "page size", "64K"), "64K/48, kernel 7.1"),
        # a 52-bit kernel keeps the hardware's 48 bits until the hardware has 52
        (lambda: select(page, "VA bits", "52"), "64K/52 (48-bit hw), kernel 7.1"),
        (lambda: select(page, "hardware VA bits", "52"), "64K/52, kernel 7.1"),
        (lambda: select(page, "KASAN", "generic"), "64K/52 KASAN generic"),
        (lambda: set_text(page, "CPUs", "8"), "kernel 7.1, 8 CPUs"),
        (lambda: select(page, "kernel", "6.16"), "kernel 6.16, 8 CPUs"),
        (lambda: set_checkbox(page, LOCAL, True), "8 CPUs<br><sup>mainline vs patched (RFC 02/11)"),
    ]
    state = first
    for i, (act, expected) in enumerate(steps):
        act()
        state = wait_title(page, expected, state)
        show_explorer(page)
        shot(f"{where}-step-{i}")

    # back to no KASAN, then the broken 16K/48: drawn, red, counted in one line
    select(page, "KASAN", "none")
    state = wait_title(page, "64K/52, kernel 6.16", state)
    select(page, "page size", "16K")
    state = wait_title(page, "16K/52", state)
    select(page, "VA bits", "48")
    state = wait_title(page, "16K/48, kernel 6.16", state)
    layout = json.loads(state)
    patched = compute_layout(KernelConfig(page_size="16K", va_bits=48, kernel="6.16",
                                          nr_cpus=8, local_percpu=True))
    bar = next(t for t in layout["data"] if t["name"] == "patched (RFC 02/11) (schematic)")
    assert "#d62728" in bar["marker"]["color"]
    message = notebook_root(page).locator(".widget-html:has-text('problems in the patched layout')")
    message.wait_for(timeout=30_000)
    line = message.inner_text()
    assert f"{len(patched.problems)} problems in the patched layout" in line
    assert "vmalloc-empty" in line and len(line.splitlines()) <= 2
    note = layout["layout"]["annotations"][-1]["text"]
    assert f"{len(patched.problems)} problems" in note
    # the list under the map, folded; opened it gives each problem in the kernel's numbers
    details = scroll_to(page, notebook_root(page).locator(".widget-vbox details.pe-problems"))
    details.locator("summary").click()
    details.locator("li").first.wait_for(state="visible")
    body = details.inner_text()
    assert "The vmalloc area is negative" in body
    assert details.locator("li").count() == len(patched.problems)
    details.scroll_into_view_if_needed()
    shot(f"{where}-16K-48-broken-list-open")
    show_explorer(page)
    shot(f"{where}-16K-48-broken")


def test_dashboard(page, console, shot, voila_app):
    open_dashboard(page, voila_app, NOTEBOOK)
    assert "LayoutExplorer(local_percpu=True)" not in page.content()  # no code cells
    shot("dashboard")
    assert_clean_page(page, console)
    assert_readable_tables(page)
    check_reading(page, console)
    exercise_controls(page, shot, "voila")
    assert_clean_page(page, console)


def test_jupyterlab(page, console, shot, jupyterlab_server):
    open_in_lab(page, jupyterlab_server, NOTEBOOK)
    shot("ran-all-cells")
    assert_clean_page(page, console)
    assert_readable_tables(page)
    check_reading(page, console)
    exercise_controls(page, shot, "lab")
    assert_clean_page(page, console)


def test_address_space_dashboard_shows_the_broken_layout(page, console, shot, voila_app):
    """From the start of the dashboard (the patch on), mainline 16K/48 and then the patch:
    the map changes at every step and the broken layout's problems are named."""
    open_dashboard(page, voila_app, NOTEBOOK)
    first = wait_figure(page)
    local = notebook_root(page).locator(
        f".widget-checkbox:has-text('{LOCAL}') input[type=checkbox]")
    assert local.is_checked()  # the notebook starts with the patch on: start from mainline
    set_checkbox(page, LOCAL, False)
    mainline_4k = wait_title(page, "4K/48, kernel 7.1, 4 CPUs<br><sup>red", first)
    select(page, "page size", "16K")
    mainline_16k = wait_title(page, "16K/48, kernel 7.1, 4 CPUs<br><sup>red", mainline_4k)
    select(page, "VA bits", "48")
    assert notebook_root(page).locator(".widget-dropdown:has(label:text-is('VA bits')) select") \
        .evaluate("s => s.options[s.selectedIndex].text") == "48"
    shot("16K-48")
    set_checkbox(page, LOCAL, True)
    patched = wait_title(page, "4 CPUs<br><sup>mainline vs patched", mainline_16k)
    message = notebook_root(page).locator(".widget-html:has-text('problems in the patched layout')")
    message.wait_for(timeout=30_000)
    assert "vmalloc-empty" in message.inner_text()
    assert patched != mainline_16k
    show_explorer(page)
    shot("16K-48-local-broken")
    assert_clean_page(page, console)
