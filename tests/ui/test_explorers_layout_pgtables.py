"""The address-space and page-table explorers: every control changes the figure, the
figure always shows what the panel shows, and a broken layout is explained compactly."""

import json

import pytest

from percpu_explorer import KernelConfig, compute_layout
from percpu_explorer.kernel import build_first_chunk, fmt_addr, layout_finding
from percpu_explorer.ui.widgets import LayoutExplorer, PageTableExplorer


def state(explorer):
    """What a reader sees of the figure: its data and layout."""
    return json.dumps(explorer.figure.to_plotly_json(), sort_keys=True, default=str)


# (panel control, a value different from the start 4K/48, local percpu, 7.1, 4 CPUs)
PANEL_CHANGES = [("kernel", "6.16"), ("page_size", 65536), ("va_bits", 39), ("kasan", "generic"),
                 ("local_percpu", False), ("nr_cpus", 8)]


@pytest.mark.parametrize("cls", [LayoutExplorer, PageTableExplorer])
@pytest.mark.parametrize(("control", "value"), PANEL_CHANGES, ids=[c for c, _ in PANEL_CHANGES])
def test_every_panel_control_changes_the_figure(cls, control, value):
    explorer = cls(local_percpu=True)
    before = state(explorer)
    explorer.set(**{control: value})
    assert explorer.error is None
    assert state(explorer) != before, control


@pytest.mark.parametrize("cls", [LayoutExplorer, PageTableExplorer])
def test_hardware_va_bits_change_the_figure(cls):
    explorer = cls(page_size=65536, va_bits=52, vabits_actual=52)
    title = explorer.figure.layout.title.text
    explorer.set(vabits_actual=48)
    assert explorer.error is None and explorer.figure.layout.title.text != title
    assert "64K/52 (48-bit hw)" in explorer.figure.layout.title.text


def test_map_title_follows_the_panel():
    explorer = LayoutExplorer(local_percpu=True, nr_cpus=16, kasan="sw-tags")
    assert explorer.figure.layout.title.text.startswith(
        "Kernel address space, 4K/48 KASAN sw-tags, kernel 7.1, 16 CPUs<br><sup>mainline vs "
        "patched (RFC 02/11)")


def test_broken_layout_is_drawn_with_a_one_line_count_and_a_folded_list():
    explorer = LayoutExplorer(local_percpu=True)
    explorer.set(page_size=16384, va_bits=48)
    patched = compute_layout(explorer.config)
    assert explorer.error is None and explorer.config.page_size == 16384
    assert "16K/48" in explorer.figure.layout.title.text  # figure and panel agree
    message = explorer.panel.message.value
    assert "7 problems in the patched layout (vmalloc-empty, outside-ttbr1 ×2, order ×3, " \
           "overlap)" in message
    assert "<br>" not in message  # one line, not the list
    details = explorer.details.value
    assert details.startswith("<details") and details.count("<li>") == 7
    for problem in patched.problems:
        assert problem.code in details
    assert explorer.details in explorer.widget.children
    explorer.set(page_size=4096)
    assert explorer.details.value == "" and explorer.panel.message.value == ""


def test_page_tables_refuse_a_broken_layout_and_the_panel_goes_back():
    walker = PageTableExplorer(local_percpu=True)
    title = walker.figure.layout.title.text
    walker.set(page_size=16384, va_bits=48)
    assert walker.error.startswith("the patched layout is broken: ")
    assert "LOCAL_PERCPU_END 0xffff800000000000" in walker.error
    assert "page size/VA bits 4K/39, 4K/48, 16K/36, 16K/47, 64K/42, 64K/48, 64K/52" \
        in walker.error
    assert "local_percpu" not in walker.error  # plain words, no field spellings
    # the panel shows what the figure was drawn from
    assert (walker.config.page_size, walker.config.va_bits) == (4096, 48)
    assert walker.figure.layout.title.text == title
    assert "4K/48" in title
    assert "no per-CPU page tables to walk" in walker.panel.message.value


def test_a_refused_change_of_cpus_and_layout_puts_back_a_cpu_the_fewer_cpus_lacked():
    """Asked for 2 CPUs and a broken layout while CPU 4095 is walked, the CPU list first
    shrinks to 0..1; going back, the panel returns to 4096 CPUs before CPU 4095 is
    chosen again (it used to raise TraitError from the CPU list)."""
    walker = PageTableExplorer(local_percpu=True, nr_cpus=4096)
    walker.set(cpu=4095)
    title = walker.figure.layout.title.text
    walker.set(nr_cpus=2, page_size=16384)
    assert walker.error.startswith("the patched layout is broken: ")
    assert (walker.config.page_size, walker.config.nr_cpus) == (4096, 4096)
    assert walker.controls["cpu"].value == 4095 and walker.walk.cpu == 4095
    assert walker.figure.layout.title.text == title and "on CPU 4095 of 4096" in title


def test_page_tables_own_controls_change_the_walk():
    walker = PageTableExplorer(local_percpu=True)
    before = state(walker)
    walker.set(cpu=2)
    assert state(walker) != before and "on CPU 2 of 4" in walker.figure.layout.title.text
    before = state(walker)
    walker.set(address="Local Percpu (first chunk)")
    assert state(walker) != before
    assert "the Local Percpu (first chunk) address" in walker.figure.layout.title.text
    # Typing an address walks it: the address choice moves to "custom".
    vmalloc = compute_layout(walker.config).symbols["VMALLOC_START"]
    walker.controls["custom"].value = fmt_addr(vmalloc + 0x1000)
    assert walker.controls["address"].value == "custom" and walker.error is None
    assert fmt_addr(vmalloc + 0x1000) in walker.figure.layout.title.text


def test_page_tables_a_new_cpu_or_address_walks_the_tables_already_built():
    walker = PageTableExplorer(local_percpu=True, nr_cpus=64)
    kpt = walker.kpt
    walker.set(cpu=63, address="Local Percpu (first chunk)")
    assert walker.kpt is kpt and walker.error is None
    # the walk the tables built anew give: CPU 63's own unit, the units one after another
    # from RAM_BASE as pcpu_embed_first_chunk() allocates them (scenarios.unit_pa)
    unit63 = 0x40000000 + 63 * (128 << 10)
    assert walker.walk == build_first_chunk(walker.config).walk(63, walker.walk.va)
    assert walker.walk.pa == unit63
    # tables changed by hand since the figure was drawn are built anew
    va = walker.walk.va
    kpt.vunmap_range(va, va + 4096, cpu=63)
    walker.set(cpu=62)
    assert walker.kpt is not kpt and walker.kpt.translate(63, va) == unit63
    kpt = walker.kpt
    walker.set(nr_cpus=32)  # another configuration: other tables
    assert walker.kpt is not kpt and walker.kpt.nr_cpus == 32


def test_the_explorer_and_the_finding_agree():
    explorer = LayoutExplorer(local_percpu=True)
    finding = layout_finding(KernelConfig(nr_cpus=4))
    hover = "<br>".join(t for tr in explorer.figure.data for t in (tr.hovertext or ()) if t)
    assert fmt_addr(finding.numbers["PERCPU_START"]) in hover
    assert fmt_addr(finding.numbers["LOCAL_PERCPU_END"]) in hover
