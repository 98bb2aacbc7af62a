"""The model held against kernels built from Debian's linux-source-6.12 for other page
sizes and VA sizes, with and without RFC patch 02/11 (captures/kbuild.py, `make
capture-all`): the bundles of data/captures/ whose meta.json names a "variant".

test_comparison and test_replay already hold every bundle, these included, to every
layout value (VMCOREINFO, ptdump markers, the first dynamic chunk's end), the first
chunk's boot lines and the trace replayed decision for decision. Here: the real numbers
each of these kernels printed, pinned (from the bundle's texts, named in the comments),
the build facts (which options stayed as Debian sets them), and what the patch does.
"""

import pytest

from percpu_explorer.captures import (
    KEEP,
    ParsedCapture,
    compare,
    first_dynamic_chunk_end,
    load_bundle,
    parse_variant,
    parse_vmallocinfo,
    ptdump_markers,
)
from percpu_explorer.kernel import compute_layout

from .conftest import BUILT

# Debian's arm64 config (linux-image-6.12.117+deb12-arm64-unsigned, boot/config-*): the
# options the layout depends on, which every build keeps.
DEBIAN_LAYOUT_OPTIONS = {
    "CONFIG_KVM": "y", "CONFIG_UNMAP_KERNEL_AT_EL0": "y", "CONFIG_ACPI_APEI_GHES": "y",
    "CONFIG_ARM_SDE_INTERFACE": "y", "CONFIG_RELOCATABLE": "y", "CONFIG_RANDOMIZE_BASE": "y",
    "CONFIG_NR_CPUS": "512",
}

# What each kernel printed (ptdump.txt: the first range after each `---[ label ]---`;
# vmcoreinfo.txt: NUMBER(...); dmesg.txt: the percpu lines).
REAL: dict[str, dict] = {
    # 16K pages, VA_BITS=47 (3 levels, PGDIR_SIZE 64G), -cpu max: TCR_EL1_T1SZ=0x11 (47).
    "debian-6.12.117-16k-47-max-smp4": {
        "ptdump": {
            "Linear Mapping start": 0xFFFF800000000000,
            "Linear Mapping end": 0xFFFFC00000000000,
            "Modules start": 0xFFFFC00000000000,
            "vmalloc() area": 0xFFFFC00080000000,
            "vmalloc() end": 0xFFFFFFBFBF800000,
            "vmemmap start": 0xFFFFFFBFC0000000,
            "vmemmap end": 0xFFFFFFFFC0000000,
            "PCI I/O start": 0xFFFFFFFFC0800000,
            "PCI I/O end": 0xFFFFFFFFC1800000,
            "Fixmap start": 0xFFFFFFFFFF3DC000,  # FIXADDR_TOT_START with 16K fixmap pages
            "Fixmap end": 0xFFFFFFFFFF800000,
        },
        "vmcoreinfo": {
            "VA_BITS": 47, "vabits_actual": 47, "MODULES_VADDR": 0xFFFFC00000000000,
            "VMALLOC_START": 0xFFFFC00080000000, "VMALLOC_END": 0xFFFFFFBFBF800000,
            "VMEMMAP_START": 0xFFFFFFBFC0000000, "VMEMMAP_END": 0xFFFFFFFFC0000000,
        },
        # dmesg: "percpu: Embedded 14 pages/cpu s194720 r0 d34656 u229376",
        # "pcpu-alloc: s194720 r0 d34656 u229376 alloc=14*16384" (r0: no modules)
        "first_chunk": (194720, 0, 34656, 229376, 16384, 4),
        # trace: percpu_create_chunk base_addr=ffffffbfbf720000, then ffffffbfbf640000:
        # 0xffffffbfbf720000 + 4 * 229376 = 0xffffffbfbf800000 = VMALLOC_END
        "chunks_created": 2,
    },
    # 4K pages, VA_BITS=48 with patch 02/11 compiled in (PGDIR_SIZE 512G, so each area is
    # 1T), -cpu max: TCR_EL1_T1SZ=0x10. ptdump.txt: "0xfffffb7fff800000-0xfffffb8000000000
    # 8M PMD", "---[ Global percpu start ]---", "0xfffffb8000000000-0xfffffc8000000000 1T
    # PGD", "---[ Global percpu end ]---", "---[ Local percpu start ]---", ...
    "debian-6.12.117-4k-48-patched-max-smp4": {
        "ptdump": {
            "Linear Mapping start": 0xFFFF000000000000,
            "Modules start": 0xFFFF800000000000,
            "vmalloc() area": 0xFFFF800080000000,
            "vmalloc() end": 0xFFFFFB7FFF800000,  # PERCPU_START - SZ_8M
            "Global percpu start": 0xFFFFFB8000000000,
            "Global percpu end": 0xFFFFFC8000000000,
            "Local percpu start": 0xFFFFFC8000000000,
            "Local percpu end": 0xFFFFFD8000000000,  # ALIGN_DOWN(VMEMMAP_START, 512G)
            "vmemmap start": 0xFFFFFDFFC0000000,
            "vmemmap end": 0xFFFFFFFFC0000000,
            "PCI I/O start": 0xFFFFFFFFC0800000,
            "Fixmap start": 0xFFFFFFFFFF427000,
            "Fixmap end": 0xFFFFFFFFFF800000,
        },
        "vmcoreinfo": {
            "VA_BITS": 48, "vabits_actual": 48, "MODULES_VADDR": 0xFFFF800000000000,
            "VMALLOC_START": 0xFFFF800080000000, "VMALLOC_END": 0xFFFFFB7FFF800000,
            "VMEMMAP_START": 0xFFFFFDFFC0000000, "VMEMMAP_END": 0xFFFFFFFFC0000000,
        },
        # dmesg: "percpu: Embedded 31 pages/cpu s96224 r0 d30752 u126976",
        # "pcpu-alloc: s96224 r0 d30752 u126976 alloc=31*4096"
        "first_chunk": (96224, 0, 30752, 126976, 4096, 4),
        # trace: percpu_create_chunk base_addr=fffffb7fff784000 (+ 4 * 126976 = the patched
        # VMALLOC_END 0xfffffb7fff800000), fffffb7fff708000, fffffb7fff68c000,
        # fffffb7fff610000: chunks still come from vmalloc (patches 03-11 are not applied)
        "chunks_created": 4,
    },
    # 16K pages, VA_BITS=47 with patch 02/11 (3 levels, PGDIR_SIZE 64G, so each area is
    # 128G), -cpu max: TCR_EL1_T1SZ=0x11; linux-source-6.12 6.12.118. ptdump.txt:
    # "0xffffff6fff800000-0xffffff7000000000 8M PTE", "---[ Global percpu start ]---",
    # "0xffffff7000000000-0xffffff9000000000 128G PGD", "---[ Local percpu start ]---",
    # "0xffffff9000000000-0xffffffb000000000 128G PGD"
    "debian-6.12.118-16k-47-patched-max-smp4": {
        "ptdump": {
            "Linear Mapping start": 0xFFFF800000000000,
            "Linear Mapping end": 0xFFFFC00000000000,
            "Modules start": 0xFFFFC00000000000,
            "Modules end": 0xFFFFC00080000000,
            "vmalloc() area": 0xFFFFC00080000000,
            "vmalloc() end": 0xFFFFFF6FFF800000,  # PERCPU_START - SZ_8M
            "Global percpu start": 0xFFFFFF7000000000,
            "Global percpu end": 0xFFFFFF9000000000,
            "Local percpu start": 0xFFFFFF9000000000,
            "Local percpu end": 0xFFFFFFB000000000,  # ALIGN_DOWN(VMEMMAP_START, 64G)
            "vmemmap start": 0xFFFFFFBFC0000000,
            "vmemmap end": 0xFFFFFFFFC0000000,
            "PCI I/O start": 0xFFFFFFFFC0800000,
            "PCI I/O end": 0xFFFFFFFFC1800000,
            "Fixmap start": 0xFFFFFFFFFF3DC000,
            "Fixmap end": 0xFFFFFFFFFF800000,
        },
        "vmcoreinfo": {
            "VA_BITS": 47, "vabits_actual": 47, "MODULES_VADDR": 0xFFFFC00000000000,
            "VMALLOC_START": 0xFFFFC00080000000, "VMALLOC_END": 0xFFFFFF6FFF800000,
            "VMEMMAP_START": 0xFFFFFFBFC0000000, "VMEMMAP_END": 0xFFFFFFFFC0000000,
        },
        # dmesg: "percpu: Embedded 14 pages/cpu s194720 r0 d34656 u229376",
        # "pcpu-alloc: s194720 r0 d34656 u229376 alloc=14*16384" (as unpatched 16K/47)
        "first_chunk": (194720, 0, 34656, 229376, 16384, 4),
        # trace: percpu_create_chunk base_addr=ffffff6fff720000 (+ 4 * 229376 = the patched
        # VMALLOC_END 0xffffff6fff800000), then ffffff6fff640000
        "chunks_created": 2,
    },
    # 64K pages, VA_BITS=52 without the patch, -cpu max (LVA: TCR_EL1_T1SZ=0xc, 52 bits);
    # linux-source-6.12 6.12.118. VA_BITS > VA_BITS_MIN (48): VMALLOC_END is
    # VMEMMAP_START + VMEMMAP_UNUSED_NPAGES * sizeof(struct page) - SZ_8M.
    "debian-6.12.118-64k-52-max-smp4": {
        "ptdump": {
            "Linear Mapping start": 0xFFF0000000000000,
            "Linear Mapping end": 0xFFFF800000000000,
            "Modules start": 0xFFFF800000000000,
            "Modules end": 0xFFFF800080000000,
            "vmalloc() area": 0xFFFF800080000000,
            "vmalloc() end": 0xFFFFFC1FBF800000,
            "vmemmap start": 0xFFFFFC1FC0000000,
            "vmemmap end": 0xFFFFFFFFC0000000,
            "PCI I/O start": 0xFFFFFFFFC0800000,
            "PCI I/O end": 0xFFFFFFFFC1800000,
            "Fixmap start": 0xFFFFFFFFFF2B0000,
            "Fixmap end": 0xFFFFFFFFFF800000,
        },
        "vmcoreinfo": {
            "VA_BITS": 52, "vabits_actual": 52, "MODULES_VADDR": 0xFFFF800000000000,
            "VMALLOC_START": 0xFFFF800080000000, "VMALLOC_END": 0xFFFFFC1FBF800000,
            "VMEMMAP_START": 0xFFFFFC1FC0000000, "VMEMMAP_END": 0xFFFFFFFFC0000000,
        },
        # dmesg: "percpu: Embedded 10 pages/cpu s588128 r0 d67232 u655360",
        # "pcpu-alloc: s588128 r0 d67232 u655360 alloc=10*65536"
        "first_chunk": (588128, 0, 67232, 655360, 65536, 4),
        # trace: one percpu_create_chunk, base_addr=fffffc1fbf580000 (+ 4 * 655360 =
        # 0xfffffc1fbf800000 = VMALLOC_END)
        "chunks_created": 1,
    },
    # 64K pages, VA_BITS=42 without the patch, -cpu max: TCR_EL1_T1SZ=0x16 (42 bits);
    # linux-source-6.12 6.12.118. Two levels (arch/arm64/Kconfig PGTABLE_LEVELS): PGDIR_SHIFT
    # = ARM64_HW_PGTABLE_LEVEL_SHIFT(2) = 13 * 2 + 3 = 29 (512M per entry, PTRS_PER_PGD 8192),
    # PUD and PMD folded into the PGD. VA_BITS == VA_BITS_MIN (memory.h), so PAGE_END and
    # MODULES_VADDR are _PAGE_END(42) = -2^41, VMEMMAP_SIZE = (2^41 >> 16) * 64 = 2G below
    # VMEMMAP_END (-1G), and VMALLOC_END = VMEMMAP_START - SZ_8M (pgtable.h).
    "debian-6.12.118-64k-42-max-smp4": {
        "ptdump": {
            "Linear Mapping start": 0xFFFFFC0000000000,  # _PAGE_OFFSET(42)
            "Linear Mapping end": 0xFFFFFE0000000000,
            "Modules start": 0xFFFFFE0000000000,
            "Modules end": 0xFFFFFE0080000000,
            "vmalloc() area": 0xFFFFFE0080000000,
            "vmalloc() end": 0xFFFFFFFF3F800000,
            "vmemmap start": 0xFFFFFFFF40000000,
            "vmemmap end": 0xFFFFFFFFC0000000,
            "PCI I/O start": 0xFFFFFFFFC0800000,
            "PCI I/O end": 0xFFFFFFFFC1800000,
            "Fixmap start": 0xFFFFFFFFFF2B0000,  # 85 fixmap pages, as at 64K/52
            "Fixmap end": 0xFFFFFFFFFF800000,
        },
        "vmcoreinfo": {
            "VA_BITS": 42, "vabits_actual": 42, "MODULES_VADDR": 0xFFFFFE0000000000,
            "MODULES_END": 0xFFFFFE0080000000, "VMALLOC_START": 0xFFFFFE0080000000,
            "VMALLOC_END": 0xFFFFFFFF3F800000, "VMEMMAP_START": 0xFFFFFFFF40000000,
            "VMEMMAP_END": 0xFFFFFFFFC0000000,
        },
        # dmesg: "percpu: Embedded 10 pages/cpu s588128 r0 d67232 u655360",
        # "pcpu-alloc: s588128 r0 d67232 u655360 alloc=10*65536" (the 64K/52 build's too)
        "first_chunk": (588128, 0, 67232, 655360, 65536, 4),
        # trace: one percpu_create_chunk, base_addr=ffffffff3f580000 (+ 4 * 655360 =
        # 0xffffffff3f800000 = VMALLOC_END)
        "chunks_created": 1,
    },
    # 64K pages, VA_BITS=52 (3 levels, PGDIR_SIZE 4T, so each area is 8T) with the patch,
    # -cpu max (LVA: TCR_EL1_T1SZ=0xc, 52 bits). VA_BITS > VA_BITS_MIN (48), so
    # LOCAL_PERCPU_END is ALIGN_DOWN(VMEMMAP_START + VMEMMAP_UNUSED_NPAGES * 64, 4T).
    "debian-6.12.117-64k-52-patched-max-smp4": {
        "ptdump": {
            "Linear Mapping start": 0xFFF0000000000000,
            "Modules start": 0xFFFF800000000000,
            "vmalloc() area": 0xFFFF800080000000,
            "vmalloc() end": 0xFFFFEBFFFF800000,
            "Global percpu start": 0xFFFFEC0000000000,
            "Global percpu end": 0xFFFFF40000000000,
            "Local percpu start": 0xFFFFF40000000000,
            "Local percpu end": 0xFFFFFC0000000000,
            "vmemmap start": 0xFFFFFC1FC0000000,
            "vmemmap end": 0xFFFFFFFFC0000000,
            "PCI I/O start": 0xFFFFFFFFC0800000,
            "Fixmap start": 0xFFFFFFFFFF2B0000,  # FIXADDR_TOT_START with 64K fixmap pages
            "Fixmap end": 0xFFFFFFFFFF800000,
        },
        "vmcoreinfo": {
            "VA_BITS": 52, "vabits_actual": 52, "MODULES_VADDR": 0xFFFF800000000000,
            "VMALLOC_START": 0xFFFF800080000000, "VMALLOC_END": 0xFFFFEBFFFF800000,
            "VMEMMAP_START": 0xFFFFFC1FC0000000, "VMEMMAP_END": 0xFFFFFFFFC0000000,
        },
        # dmesg: "percpu: Embedded 10 pages/cpu s588128 r0 d67232 u655360",
        # "pcpu-alloc: s588128 r0 d67232 u655360 alloc=10*65536"
        "first_chunk": (588128, 0, 67232, 655360, 65536, 4),
        # trace: one percpu_create_chunk, base_addr=ffffebffff580000 (+ 4 * 655360 =
        # 0xffffebffff800000, the patched VMALLOC_END)
        "chunks_created": 1,
    },
    # The same kernel on -cpu cortex-a72 (no LVA: TCR_EL1_T1SZ=0x10, vabits_actual 48): the
    # unused part of vmemmap (VMEMMAP_UNUSED_NPAGES pages of struct page) moves vmemmap start
    # to 0xffffffdfc0000000, and aligned down to 4T the percpu areas stay where they were.
    "debian-6.12.117-64k-52-patched-cortex-a72-smp4": {
        "ptdump": {
            "Linear Mapping start": 0xFFFF000000000000,  # _PAGE_OFFSET(48), the walk start
            "vmalloc() end": 0xFFFFEBFFFF800000,
            "Global percpu start": 0xFFFFEC0000000000,
            "Global percpu end": 0xFFFFF40000000000,
            "Local percpu start": 0xFFFFF40000000000,
            "Local percpu end": 0xFFFFFC0000000000,
            "vmemmap start": 0xFFFFFFDFC0000000,
            "Fixmap start": 0xFFFFFFFFFF2B0000,
        },
        "vmcoreinfo": {
            "VA_BITS": 52, "vabits_actual": 48, "VMALLOC_END": 0xFFFFEBFFFF800000,
            "VMEMMAP_START": 0xFFFFFC1FC0000000,  # VMEMMAP_START is that of VA_BITS=52
        },
        "first_chunk": (588128, 0, 67232, 655360, 65536, 4),
        "chunks_created": 1,
    },
}


@pytest.fixture(scope="module", params=BUILT, ids=lambda p: p.name)
def built(request):
    return ParsedCapture(load_bundle(request.param))


def test_kernels_of_every_page_size_are_shipped():
    variants = {load_bundle(p).meta["variant"] for p in BUILT}
    assert {"16k-47", "4k-48-patched", "16k-47-patched", "64k-52", "64k-42",
            "64k-52-patched"} <= variants
    assert set(REAL) == {p.name for p in BUILT}, "pin the real values of every new bundle"


def test_the_build_is_the_variant_with_debians_layout_options(built):
    meta = built.bundle.meta
    variant = parse_variant(meta["variant"])
    cfg = built.config
    assert (cfg.page_size, cfg.va_bits) == (int(variant.page_size[:-1]) * 1024,
                                            variant.va_bits)
    assert meta["patched"] == variant.patched
    assert {k: meta["config"][k] for k in DEBIAN_LAYOUT_OPTIONS} == DEBIAN_LAYOUT_OPTIONS
    # every difference from Debian's config is recorded; none touches a layout option
    diff = meta["config_differences"]
    assert diff["modules_dropped"] > 4000 and diff["changed"]["MODULES"] == ["y", "n"]
    assert not set(KEEP) & (set(diff["changed"]) | set(diff["vanished"]))
    assert meta["config"]["CONFIG_PTDUMP_DEBUGFS"] == meta["config"]["CONFIG_PERCPU_STATS"] \
        == "y"
    assert meta["build_seconds"] > 0 and meta["boot_seconds"] > 0


def test_ptdump_markers_are_the_real_ones(built):
    real = REAL[built.name]["ptdump"]
    seen = ptdump_markers(built.bundle.text("ptdump")).set_index("label")["address"]
    assert {label: int(seen[label]) for label in real} == real
    # and the model's, for the captured configuration (patched when the kernel is)
    model = {m.label: max(m.address, built.layout["_PAGE_OFFSET(vabits_actual)"])
             for m in built.layout.markers}
    assert {label: model[label] for label in real} == real
    assert list(seen.index) == [m.label for m in built.layout.markers]


def test_vmcoreinfo_is_the_real_one(built):
    real = REAL[built.name]["vmcoreinfo"]
    assert {k: built.numbers[k] for k in real} == real
    for key, value in real.items():
        assert built.layout[key] == value, key


def test_first_chunk_of_the_page_size(built):
    # pcpu_embed_first_chunk() with atom_size = PAGE_SIZE (arm64's
    # PERCPU_DYNAMIC_EARLY_SIZE and pcpu_fc_alloc): units round up to whole pages
    real = REAL[built.name]["first_chunk"]
    info = built.first_chunk
    assert (info.static_size, info.reserved_size, info.dyn_size, info.unit_size,
            info.atom_size, info.nr_units) == real
    assert info.atom_size == built.config.page_size
    assert info.unit_size % built.config.page_size == 0


def test_the_trace_replays_at_this_page_size(built):
    result = compare(built)
    replay = result.replay
    assert replay is not None and replay.all_matched
    # chunks were created at this page size and the model put each at the same address
    assert replay.creates_real == replay.creates_model
    assert len(replay.creates_real) == REAL[built.name]["chunks_created"]
    assert first_dynamic_chunk_end(built) == built.layout["VMALLOC_END"]


def test_live_chunks_are_the_vm_areas_vmallocinfo_lists(built):
    # pcpu_get_vm_areas() gives each dynamic chunk one area of nr_units * unit_size bytes
    # (u229376 at 16K, u126976 at 4K, u655360 at 64K) at its base_addr
    trace = built.trace
    created = {int(b) for b in trace[trace["event"] == "percpu_create_chunk"]["base_addr"]}
    destroyed = {int(b) for b in trace[trace["event"] == "percpu_destroy_chunk"]["base_addr"]}
    areas = parse_vmallocinfo(built.bundle.text("vmallocinfo"))
    chunks = areas[areas["function"] == "pcpu_get_vm_areas"]
    assert {int(s) for s in chunks["start"]} == created - destroyed
    info = built.first_chunk
    assert (chunks["size"] == info.nr_units * info.unit_size).all()


# --- the patch, compiled ---------------------------------------------------------------

PATCHED = [p for p in BUILT if load_bundle(p).meta.get("patched")]


@pytest.mark.parametrize("path", PATCHED, ids=lambda p: p.name)
def test_the_compiled_patch_places_the_areas_where_the_model_does(path):
    capture = ParsedCapture(load_bundle(path))
    seen = ptdump_markers(capture.bundle.text("ptdump")).set_index("label")["address"]
    sym = capture.layout.symbols
    size = 2 * sym["PGDIR_SIZE"]  # PERCPU_SIZE
    assert seen["Global percpu start"] == sym["PERCPU_START"]
    assert seen["Global percpu end"] == seen["Local percpu start"] == sym["PERCPU_END"]
    assert seen["Local percpu end"] == sym["LOCAL_PERCPU_END"] == \
        seen["Global percpu start"] + 2 * size
    assert seen["vmalloc() end"] == seen["Global percpu start"] - (8 << 20)
    assert int(seen["Global percpu start"]) % sym["PGDIR_SIZE"] == 0
    assert not capture.layout.problems
    # the unpatched layout of the same configuration disagrees exactly there
    plain = compute_layout(capture.config)
    assert plain["VMALLOC_END"] != seen["vmalloc() end"]

