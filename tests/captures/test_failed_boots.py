"""RFC patch 02/11 compiled into Debian's own 4K/52 configuration, where the model calls the
patched layout broken, built (`make capture-all`: 4k-52-patched) and booted under QEMU 7.2
with `--keep-failed-boot --log-exceptions`: what the real kernel did, held against the
model's problem list for the same configuration.

The four bundles (data/captures/debian-6.12.118-4k-52-patched-*; linux-source-6.12 was
6.12.118 when they were built) are one kernel booted on -cpu max (LPA2: 52-bit VA) and
-cpu cortex-a72 (48-bit), each with KASLR (the capture's default) and with nokaslr.
"""

from pathlib import Path

import pytest

from percpu_explorer.captures import (
    ParsedCapture,
    QemuPlan,
    boot_evidence,
    boot_failure_facts,
    failed_boot_finding,
    failed_boot_table,
    first_chunk_comparison,
    load_bundle,
)
from percpu_explorer.captures.boots import MIN_KIMG_ALIGN, kaslr_range
from percpu_explorer.captures.qemu import exception_facts
from percpu_explorer.claims import evaluate_claims
from percpu_explorer.kernel import compute_layout
from percpu_explorer.percpu import build_alloc_info

from .conftest import CAPTURES, FAILED_BOOTS, MAX4

NAME = "debian-6.12.118-4k-52-patched-{cpu}-smp4{kaslr}"
KASLR = [CAPTURES / NAME.format(cpu=cpu, kaslr="") for cpu in ("max", "cortex-a72")]
NOKASLR = [CAPTURES / NAME.format(cpu=cpu, kaslr="-nokaslr") for cpu in ("max", "cortex-a72")]

# What the model says of 4K/52 with patch 02/11 (kernel arithmetic, the patch's macros):
# LOCAL_PERCPU_END = ALIGN_DOWN(VMEMMAP_START + ..., PGDIR_SIZE 256T) = 0xffff000000000000,
# two areas of 512T below it, VMALLOC_END = PERCPU_START - 8M.
MODEL_PROBLEMS = {
    # 52-bit hardware: the areas lie inside the linear map
    "max": ["vmalloc-empty", "overlap", "overlap", "order", "order"],
    # 48-bit hardware: they lie below the lowest address TTBR1 translates
    "cortex-a72": ["vmalloc-empty", "outside-ttbr1", "outside-ttbr1", "order", "order",
                   "order", "order"],
}


def test_the_four_boots_are_shipped_and_none_is_compared_as_a_capture():
    assert sorted(FAILED_BOOTS) == sorted(KASLR + NOKASLR)
    for path in FAILED_BOOTS:
        meta = load_bundle(path).meta
        assert meta["boot_failed"] and meta["patched"] and meta["variant"] == "4k-52-patched"
        assert meta["kernel_release"] == "6.12.118+deb12-arm64-4k-52-patched"
        # the boot command line had panic=1 (with -no-reboot QEMU exits on a panic)
        assert "panic=1" in " ".join(meta["qemu_command"])
        assert meta["build_seconds"] > 0 and meta["boot_seconds"] > 0


@pytest.mark.parametrize("path", FAILED_BOOTS, ids=lambda p: p.name)
def test_the_model_calls_the_layout_broken(path):
    ev = boot_evidence(path)
    cpu = load_bundle(path).meta["cpu"]
    assert [f.code for f in ev.layout.problems] == MODEL_PROBLEMS[cpu]
    sym = ev.layout.symbols
    assert (sym["VMALLOC_START"], sym["VMALLOC_END"]) == (0xFFFF800080000000,
                                                          0xFFFAFFFFFF800000)
    assert ev.config.vabits_actual == (52 if cpu == "max" else 48)
    assert not ev.reached_init


@pytest.mark.parametrize("path", NOKASLR, ids=lambda p: p.name)
def test_without_kaslr_every_vmalloc_fails_in_the_models_range_and_init_never_forks(path):
    ev = boot_evidence(path)
    sym = ev.layout.symbols
    text = load_bundle(path).text("dmesg")
    # mm/vmalloc.c printed the range it searched: VMALLOC_START and VMALLOC_END as the
    # running kernel computed them, the model's exactly (dmesg.txt: "vmalloc_node_range
    # for size 20480 failed: Address range restricted to 0xffff800080000000 -
    # 0xfffaffffff800000")
    assert ev.vmap_ranges == ((sym["VMALLOC_START"], sym["VMALLOC_END"]),)
    # init_IRQ()'s IRQ stacks (16K + a guard page) first, then the GIC's 64K distributor
    # (69632) fails to ioremap, and the fork of init (a 16K vmap stack)
    assert ev.vmap_failures == (20480, 20480, 20480, 20480, 69632, 20480)
    assert "unable to map gic dist registers" in text
    assert ev.how == "panic"
    assert ev.line == "Kernel panic - not syncing: Attempted to kill the idle task!"
    # rest_init() looks up the init task it failed to create: a NULL pointer (0x2c)
    assert ev.oops_pc == "rest_init+0x40/0xd0"
    assert "Unable to handle kernel NULL pointer dereference at virtual address " \
           "000000000000002c" in text
    assert ev.first_abort["far"] == 0x2C
    # the first chunk came up before anything failed, as the model sizes it
    # (dmesg.txt: "percpu: Embedded 31 pages/cpu s96224 r0 d30752 u126976")
    first = ParsedCapture(load_bundle(path)).first_chunk
    ai = build_alloc_info(first.static_size, nr_cpus=4, page_size=4096,
                          reserved_size=first.reserved_size)  # r0: no modules
    assert (first.static_size, first.dyn_size, first.unit_size, first.pages_per_cpu) == (
        96224, 30752, 126976, 31)
    assert (ai.dyn_size, ai.unit_size) == (first.dyn_size, first.unit_size)
    # The console ran at loglevel=8, so it kept pcpu_dump_alloc_info()'s KERN_DEBUG lines
    # ("pcpu-alloc: s96224 r0 d30752 u126976 alloc=31*4096", "pcpu-alloc: [0] 0 [0] 1
    # [0] 2 [0] 3"): the model writes all three boot lines as the broken kernel did.
    assert first.nr_units == 4 and first.groups == ((0, 1, 2, 3),)
    rows = first_chunk_comparison(ParsedCapture(load_bundle(path)))
    assert rows["match"].all() and len(rows) == 10
    assert rows.loc[rows["item"] == "log line 3", "real"].item() == \
        "pcpu-alloc: [0] 0 [0] 1 [0] 2 [0] 3"
    # 52-bit hardware: the kernel says so; 48-bit hardware: it does not
    lpa2 = "CPU features: detected: 52-bit Virtual Addressing (LPA2)" in text
    assert lpa2 == (ev.config.vabits_actual == 52)


# meta.json boot_failure: QEMU's exception log (exceptions.txt) and the monitor's registers
# (registers.txt) after the exception storm.
KASLR_REAL = {
    "max": {"X00": 0x7BDA5E9638A00000, "far": 0x7BD9DE96B93F0CC8},
    "cortex-a72": {"X00": 0x5470A53EFE800000, "far": 0x5470253F7F1F0CC8},
}


@pytest.mark.parametrize("path", KASLR, ids=lambda p: p.name)
def test_with_kaslr_the_image_offset_wraps_and_the_first_relocation_faults(path):
    ev = boot_evidence(path)
    bundle = load_bundle(path)
    real = KASLR_REAL[bundle.meta["cpu"]]
    assert bundle.text("dmesg") == ""  # nothing reached the console, earlycon included
    assert ev.how == "exception loop"
    abort, regs = ev.first_abort, ev.registers
    # __pi_relocate_kernel+0x34 (this build's vmlinux, the Image loaded at 0x40200000):
    # `str x3, [x4, x0]`, x4 the relocation's place, x0 the KASLR offset
    assert (abort["exception"], abort["esr"], abort["elr"]) == ("Data Abort",
                                                                "0x25/0x96000044", 0x41009EE4)
    assert regs["X00"] == real["X00"] and abort["far"] == real["far"]
    assert abort["far"] == (regs["X04"] + regs["X00"]) % (1 << 64)
    assert regs["X04"] == 0xFFFF8000809F0CC8  # an address inside the linked image
    # no exception vectors yet: VBAR_EL1 is 0, so the abort goes to 0x200 and faults again
    assert abort["vector"] == regs["PC"] == 0x200
    # kaslr_early_init(): range = (VMALLOC_END - KIMAGE_VADDR) / 2 wraps with the patch,
    # and the offset it picked lies in the model's [range / 2, range / 2 + range)
    low, high = kaslr_range(ev.layout)
    assert (low, high) == (0x3FFEDFFFDFE00000, 0xBFFC9FFF9FA00000)
    assert low <= regs["X00"] < high and regs["X00"] % MIN_KIMG_ALIGN == 0
    # unpatched, the same configuration's range is below 2^47 (Debian's kernel boots)
    plain = compute_layout(ev.config.replace(local_percpu=False))
    assert kaslr_range(plain)[1] < 1 << 47
    # the image would start far below the lowest TTBR1 address
    image = (ev.layout.symbols["KIMAGE_VADDR"] + regs["X00"]) % (1 << 64)
    assert image < ev.layout.symbols["_PAGE_OFFSET(vabits_actual)"]


def test_the_finding_and_table_set_the_kernel_beside_the_model():
    f = failed_boot_finding(NOKASLR[0])
    assert f.basis == "real kernel" and f.numbers["problems"] == 5
    assert "Attempted to kill the idle task!" in f.answer
    assert "[0xffff800080000000, 0xfffaffffff800000), the model's VMALLOC_START and " \
           "VMALLOC_END" in f.answer
    k = failed_boot_finding(KASLR[0])
    assert "chose 0x7bda5e9638a00000" in k.answer and k.numbers["how"] == "exception loop"
    table = failed_boot_table(NOKASLR[0]).set_index("problem")
    assert "vmalloc_node_range for size 20480 failed" in table.loc["vmalloc-empty",
                                                                   "real kernel"]
    assert list(table.index) == [*MODEL_PROBLEMS["max"], "boot"]


def test_claims_show_the_boots_beside_debians_4k_52_rows():
    rows = evaluate_claims(claims=["6"])
    debian = rows[rows.config.str.contains(MAX4.name, regex=False)].iloc[0]
    assert debian.basis == "real kernel" and debian.verdict == "cannot hold"
    assert "Built with patch 02/11 and booted with KASLR" in debian.evidence
    assert "Attempted to kill the idle task!" in debian.evidence
    assert debian.numbers["patched_boots"] == {KASLR[0].name: "exception loop",
                                               NOKASLR[0].name: "panic"}


def test_a_failed_boot_is_read_from_its_own_texts():
    # the facts in meta.json are what boot_failure_facts / exception_facts read from the
    # bundle's dmesg.txt, exceptions.txt and registers.txt
    for path in FAILED_BOOTS:
        bundle = load_bundle(path)
        facts = bundle.meta["boot_failure"]
        read = boot_failure_facts(bundle.text("dmesg"))
        assert read["how"] in (facts["how"], "hang") and read["reached_init"] is False
        more = exception_facts(bundle.texts.get("exceptions", ""),
                               bundle.texts.get("registers", ""))
        assert more["first_abort"] == facts["first_abort"]
        assert more.get("registers") == facts.get("registers")


def test_the_command_line_of_a_boot_kept_when_it_fails():
    words = QemuPlan(keep_failed=True, kaslr=False).append().split()
    # panic=1 always; earlycon (the DT's stdout-path PL011 through the fixmap) and
    # loglevel=8 after quiet, so the console shows the kernel's messages before any driver,
    # KERN_DEBUG (7) included: Documentation/admin-guide/kernel-parameters.txt, "loglevel=":
    # messages with a loglevel smaller than the console loglevel are printed; mm/percpu.c
    # prints the first chunk's "pcpu-alloc:" lines at KERN_DEBUG
    assert "panic=1" in QemuPlan().append().split() and "earlycon" not in QemuPlan().append()
    assert words.index("loglevel=8") > words.index("quiet") and "earlycon" in words
    assert "nokaslr" in words


def test_a_watched_boot_s_command_is_the_one_its_bundle_records():
    """A boot kept when it fails runs with QEMU's exception log (-d int,guest_errors) and
    a monitor socket in place of -monitor none; the bundle's meta records that command,
    the machine's paths written as placeholders."""
    from percpu_explorer.captures.qemu import Watch, qemu_command, watched_command

    command = qemu_command(QemuPlan(keep_failed=True), Path("/w/Image"), Path("/w/initrd"))
    watch = Watch(Path("/w/qemu-exceptions.log"), Path("/w/qemu-monitor.sock"))
    ran = watched_command(command, watch)
    assert ran.count("-monitor") == 1 and "none" not in ran[ran.index("-monitor") + 1]
    assert ran[ran.index("-d") + 1] == "int,guest_errors"
    assert ran[ran.index("-D") + 1] == "/w/qemu-exceptions.log"
    recorded = watched_command(command, watch, placeholders=True)
    assert recorded[recorded.index("-D") + 1] == "<exception log>"
    assert recorded[recorded.index("-monitor") + 1] == "unix:<monitor socket>,server,nowait"
    assert watched_command(command, None) == command
    # without the exception log (a boot kept but not watched for faults): the monitor only
    assert "-d" not in watched_command(command, Watch(None, Path("/w/m.sock")))
