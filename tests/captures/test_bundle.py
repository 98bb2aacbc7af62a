"""Capture bundles: the shipped ones, a round trip through a folder, the config facts of
a kernel config file and the KernelConfig derived from a bundle."""

import pytest

from percpu_explorer.captures import (
    CaptureBundle,
    config_facts,
    derive_config,
    kernel_version_from_release,
    load_bundle,
    parse_vmcoreinfo,
    preemption_model,
    save_bundle,
    vmcoreinfo_numbers,
)

from .conftest import A72, BUNDLES


def test_at_least_two_bundles_from_different_cpus_are_shipped():
    metas = [load_bundle(p).meta for p in BUNDLES]
    assert len({(m["cpu"], m["smp"]) for m in metas}) >= 2
    assert {"max", "cortex-a72"} <= {m["cpu"] for m in metas}
    rebuilt = [p for p in BUNDLES if {"ptdump", "percpu_stats"} <= set(load_bundle(p).texts)]
    assert len(rebuilt) >= 1


def test_bundle_round_trip_gzips_large_texts(tmp_path):
    bundle = CaptureBundle(meta={"kernel_release": "6.12.117"},
                           texts={"dmesg": "small\n", "trace": "x" * 100_000})
    folder = save_bundle(bundle, tmp_path / "b")
    assert (folder / "trace.txt.gz").is_file() and (folder / "dmesg.txt").is_file()
    again = load_bundle(folder)
    assert again.texts == bundle.texts and again.name == "b"
    with pytest.raises(KeyError, match="ptdump"):
        again.text("ptdump")


# --- config facts and the derived config -----------------------------------------------

def test_config_facts_and_versions():
    facts = config_facts("CONFIG_ARM64_VA_BITS=52\n# CONFIG_PTDUMP_DEBUGFS is not set\n"
                         "CONFIG_PREEMPT_VOLUNTARY=y\nCONFIG_LOCALVERSION=\"-x\"\n")
    assert facts["CONFIG_ARM64_VA_BITS"] == "52" and facts["CONFIG_PTDUMP_DEBUGFS"] is None
    assert facts["CONFIG_LOCALVERSION"] == "-x"
    assert preemption_model(facts) == "PREEMPT_VOLUNTARY (no preempt count)"
    assert kernel_version_from_release("6.12.117+deb12-arm64") == "6.12.117"
    assert kernel_version_from_release("6.8.0-rc3") == "6.8.0"


def test_derived_config_is_debians_arm64_kernel(debian_bundle):
    cfg = derive_config(debian_bundle)
    assert (cfg.page_size, cfg.va_bits, cfg.nr_cpus, cfg.kasan) == (4096, 52, 512, "none")
    assert cfg.kernel == "6.12.117"
    assert (cfg.kvm, cfg.kpti, cfg.ghes, cfg.sdei, cfg.relocatable) == (True,) * 5


def test_derive_config_takes_vmcoreinfo_parsed_already(monkeypatch):
    # vabits_actual comes from NUMBER(TCR_EL1_T1SZ)=0x10 of the a72 boot (48 bits); given
    # the numbers, derive_config() reads no text.
    bundle = load_bundle(A72)
    numbers = vmcoreinfo_numbers(parse_vmcoreinfo(bundle.text("vmcoreinfo")))
    from percpu_explorer.captures import bundle as module

    def refuse(text):
        raise AssertionError("the VMCOREINFO text was parsed again")

    monkeypatch.setattr(module, "parse_vmcoreinfo", refuse)
    cfg = derive_config(bundle, numbers)
    assert cfg.vabits_actual == 48
    monkeypatch.undo()
    assert cfg == derive_config(bundle)
