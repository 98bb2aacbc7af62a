"""The preemption models arm64 builds, by kernel version (kernel/config.py
`preempt_choices`), checked against the kernel's Kconfig history and a real kernel's
config, and the version facts of asm/percpu.h (`thiscpu.fixes`)."""

import pytest

from percpu_explorer.captures import load_bundle
from percpu_explorer.kernel import (
    check_preempt,
    has_preempt_count,
    preempt_choices,
    preempt_from_kconfig,
)
from percpu_explorer.thiscpu import PERCPU_FIXES, fix_status, has_fix

from ..conftest import DATA


def test_models_before_v7_0_follow_what_arm64_selects():
    # kernel/Kconfig.preempt before 7dadeaa6e851: NONE, VOLUNTARY and PREEMPT for any arch
    assert preempt_choices("5.17") == preempt_choices("6.11") == ("none", "voluntary", "full")
    # arch/arm64/Kconfig "select ARCH_SUPPORTS_RT": d8fccd9ca5f9 ("arm64: Allow to enable
    # PREEMPT_RT."), merged for v6.12 (tip sched-rt-2024-09-17)
    assert preempt_choices("6.12") == ("none", "voluntary", "full", "rt")
    # PREEMPT_LAZY (v6.13) needs ARCH_HAS_PREEMPT_LAZY; arm64 selects it from v6.16:
    # c8597e2dd8b6 ("arm64: enable PREEMPT_LAZY"), "arm64 updates for 6.16" pull request
    assert "lazy" not in preempt_choices("6.15")
    assert preempt_choices("6.16") == preempt_choices("6.19") == (
        "none", "voluntary", "full", "lazy", "rt")


def test_from_v7_0_arm64_builds_only_full_lazy_and_rt():
    # 7dadeaa6e851 ("sched: Further restrict the preemption modes", tip sched/core
    # 2026-01-08, in v7.0-rc1): PREEMPT_NONE "depends on ARCH_NO_PREEMPT", PREEMPT_VOLUNTARY
    # "depends on !ARCH_HAS_PREEMPT_LAZY"; "up-to-date architectures (arm64, ...) with only
    # two preemption models: full and lazy" (+ RT)
    for kernel in ("7.0-rc1", "7.0", "7.1-rc1", "7.1"):
        assert preempt_choices(kernel) == ("full", "lazy", "rt")
    with pytest.raises(ValueError) as refused:
        check_preempt("voluntary", "7.1")
    assert str(refused.value) == (
        "preempt 'voluntary' is not offered by arm64 kernel 7.1: since v7.0, commit "
        "7dadeaa6e851 (\"sched: Further restrict the preemption modes\"), PREEMPT_VOLUNTARY "
        "depends on !ARCH_HAS_PREEMPT_LAZY, and arm64 selects ARCH_HAS_PREEMPT_LAZY; choose "
        "one of full, lazy, rt")
    with pytest.raises(ValueError, match="preempt 'dynamic' is unknown; choose one of full"):
        check_preempt("dynamic", "7.1")


def test_the_captured_debian_kernel_is_voluntary_without_a_preempt_count():
    # data/captures: Debian's 6.12.117 arm64 config has CONFIG_PREEMPT_VOLUNTARY=y and no
    # CONFIG_PREEMPT_COUNT / PREEMPT_DYNAMIC: the bracket is barrier() (include/linux/preempt.h)
    facts = load_bundle(DATA / "captures" / "debian-6.12.117-max-smp4").meta["config"]
    model = preempt_from_kconfig(facts)
    assert model == "voluntary" and facts.get("CONFIG_PREEMPT_COUNT") is None
    assert not has_preempt_count(model) and model in preempt_choices("6.12.117")
    assert all(has_preempt_count(m) for m in preempt_choices("7.1"))


def test_percpu_h_version_facts():
    # each fix: mainline release, or after the last modelled one (None); stable sublevels
    # from Debian's changelogs (6.12.117: ChangeLog-6.12.112; 6.1.192: ChangeLog-6.1.189)
    assert PERCPU_FIXES["lse_load_form"].mainline == (6, 18)
    assert all(PERCPU_FIXES[k].mainline is None for k in ("lse_sizes", "and_mask",
                                                           "write_cast"))
    assert has_fix("lse_sizes", "7.1") is False and has_fix("lse_sizes", "6.12.112") is True
    assert has_fix("and_mask", "6.1.189") is True and has_fix("and_mask", "6.1.188") is False
    assert has_fix("lse_sizes", "6.1.192") is False  # its percpu.h has no #sfx in the LSE half
    assert has_fix("lse_sizes", "6.1.200") is None  # past what was checked: unknown
    assert has_fix("lse_load_form", "6.19.4") is True  # its branch started after 6.18
    rows = {r["fix"]: r["has_fix"] for r in fix_status("6.6.100")}
    assert rows == {"lse_load_form": None, "lse_sizes": None, "and_mask": None,
                    "write_cast": None}
    with pytest.raises(ValueError, match=r"percpu\.h fix 'x' is unknown"):
        has_fix("x", "7.1")
