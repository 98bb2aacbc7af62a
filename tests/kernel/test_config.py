"""KernelConfig validation: choices from arch/arm64/Kconfig, clear messages."""

import pytest

from percpu_explorer import KernelConfig
from percpu_explorer.kernel.config import (
    CHOICE_FIELDS,
    choices_for,
    resolve_choices,
    va_bits_choices,
    valid_configs,
)
from percpu_explorer.kernel.units import format_size, parse_addr, parse_size
from percpu_explorer.kernel.versions import parse_kernel_version


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"page_size": 8192}, r"page size 8192 .* choose one of 4K, 16K, 64K"),
        ({"page_size": "8K"}, r"page size 8192 .* choose one of 4K, 16K, 64K"),
        ({"va_bits": 47}, r"va_bits 47 is not offered with 4K pages .* choose one of 39, 48, 52"),
        ({"va_bits": 52, "kernel": "6.8"}, r"va_bits 52 .* 4K pages in kernel 6\.8.* 39, 48"),
        ({"va_bits": 48, "vabits_actual": 52}, r"vabits_actual 52 .* choose one of 48"),
        ({"va_bits": 52, "vabits_actual": 56}, r"vabits_actual 56 .* choose one of 52, 48"),
        ({"kasan": "hw-tags"}, r"kasan 'hw-tags' .* none, generic, sw-tags"),
        ({"nr_cpus": 1}, r"nr_cpus 1 .* 2\.\.4096"),
        ({"nr_cpus": 8192}, r"nr_cpus 8192 .* 2\.\.4096"),
        ({"kernel": "5.10"}, r"kernel version 5\.10 is not modelled; choose a release from 5\.17"),
        ({"kernel": "7.2"}, r"kernel version 7\.2 is not modelled"),
        ({"kernel": "six"}, r"kernel version 'six' is not understood"),
        ({"kernel": "6.1", "page_size": 16384, "kasan": "generic"},
         r"kasan 'generic' is not available with 16K pages and 48-bit VA in kernel 6\.1"),
        ({"struct_page_size": 60}, r"struct_page_size 60"),
    ],
)
def test_bad_values_name_themselves_and_the_choices(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        KernelConfig(**kwargs)


def test_va_bits_choices_follow_kconfig():
    # arch/arm64/Kconfig ARM64_VA_BITS_*: 52-bit with 4K/16K needs LPA2 (v6.9+).
    assert va_bits_choices(4096, "6.1") == (39, 48)
    assert va_bits_choices(16384, "6.8") == (36, 47, 48)
    assert va_bits_choices(65536, "6.1") == (42, 48, 52)
    assert va_bits_choices(4096, "6.9") == (39, 48, 52)
    assert va_bits_choices(16384, "7.1") == (36, 47, 48, 52)


def test_valid_configs_count():
    # 7.1: 4K {39, 48, 52x2} + 16K {36, 47, 48, 52x2} + 64K {42, 48, 52x2} = 13,
    # times 3 KASAN modes.
    assert len(list(valid_configs("7.1"))) == 39
    # 6.1: 4K {39, 48} + 16K {36, 47, 48} + 64K {42, 48, 52x2} = 9; 16K/48 has no KASAN.
    assert len(list(valid_configs("6.1"))) == 9 * 3 - 2


def test_kernel_versions():
    assert str(parse_kernel_version("7.1-rc1")) == "7.1-rc1"
    assert parse_kernel_version("6.12.117").sublevel == 117
    assert parse_kernel_version("6.12").era == "6.9+"
    assert parse_kernel_version("6.8").era == "6.5-6.8"
    assert parse_kernel_version("5.17").era == "5.17-6.4"
    assert KernelConfig(kernel="v6.12.117").kernel == "6.12.117"


def test_config_normalises_and_round_trips():
    cfg = KernelConfig(page_size="16K", va_bits=52)
    assert cfg.page_size == 16384 and cfg.vabits_actual == 52
    assert KernelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown KernelConfig field"):
        KernelConfig.from_dict({"pagesize": 4096})


def test_units():
    # memory.rst writes sizes as "256TB", "2GB", "~4PB".
    assert format_size(1 << 48) == "256TB"
    assert format_size(2 << 30) == "2GB"
    # memory.rst rounds 2**52 - 2**47 bytes to "~4PB"; below 10 units we keep a decimal.
    assert format_size((1 << 52) - (1 << 47)) == "~3.9PB"
    assert format_size(224 << 20) == "224MB"
    assert format_size((2 << 40) + (511 << 30)) == "~2.5TB"
    assert parse_size("16K") == 16384 and parse_size("64KB") == 65536
    assert parse_addr("0xffff_8000_0000_0000") == 0xFFFF800000000000
    with pytest.raises(ValueError, match="does not fit in 64 bits"):
        parse_addr("0x1ffffffffffffffff")


# --- one field at a time, as a panel chooses -------------------------------------------

PANEL = {"kernel": "7.1", "page_size": 4096, "va_bits": 52, "vabits_actual": 48,
         "kasan": "generic", "local_percpu": True, "nr_cpus": 4}


def test_choices_for_follow_kconfig():
    choices = choices_for(PANEL)
    assert set(choices) == set(CHOICE_FIELDS)
    assert choices["va_bits"] == (39, 48, 52)  # ARM64_VA_BITS_52 with 4K needs LPA2 (6.9+)
    assert choices["vabits_actual"] == (52, 48)  # VA_BITS_MIN on hardware without LPA2
    assert choices["local_percpu"] == (False, True)
    old = choices_for({**PANEL, "kernel": "6.8", "page_size": 16384, "va_bits": 48})
    assert old["va_bits"] == (36, 47, 48) and old["vabits_actual"] == (48,)
    assert old["kasan"] == ("none",)  # HAVE_ARCH_KASAN excludes 16K/48 before 6.9
    assert old["local_percpu"] == (False,)
    assert choices["kernel"][0] == "5.17" and choices["kernel"][-1] == "7.1"


def test_resolve_moves_dependants_to_what_the_parent_offers():
    # 6.8 has no 4K/52 (no LPA2) and no patch 02/11: 48 bits, no hardware fallback, mainline.
    assert resolve_choices(PANEL, {"kernel": "6.8"}) == {
        **PANEL, "kernel": "6.8", "va_bits": 48, "vabits_actual": 48, "local_percpu": False}
    # 16K/52 falls back to 47 bits (VA_BITS_MIN), not 48: the hardware size returns to 52.
    assert resolve_choices(PANEL, {"page_size": "16K"})["vabits_actual"] == 52
    assert resolve_choices(PANEL, {"page_size": "16K", "vabits_actual": 47})["page_size"] == 16384
    assert resolve_choices(PANEL, {"page_size": 65536, "va_bits": 42}) == {
        **PANEL, "page_size": 65536, "va_bits": 42, "vabits_actual": 42}


@pytest.mark.parametrize(
    "changes",
    [{"page_size": "8K"}, {"va_bits": 47}, {"vabits_actual": 52}, {"kasan": "hw-tags"},
     {"kernel": "6.8", "page_size": 16384, "va_bits": 48, "kasan": "generic"},
     {"nr_cpus": 1}, {"kernel": "6.8", "local_percpu": True}],
)
def test_resolve_and_kernel_config_refuse_with_one_message(changes):
    # Each Kconfig rule is checked once: the panel's resolver and KernelConfig agree.
    current = {**PANEL, "va_bits": 48, "vabits_actual": 48}
    with pytest.raises(ValueError) as panel:
        resolve_choices(current, changes)
    with pytest.raises(ValueError) as config:
        KernelConfig(**{**current, **changes})
    assert str(panel.value) == str(config.value)


def test_resolve_refuses_what_no_panel_offers():
    with pytest.raises(ValueError, match=r"kernel '6\.12\.117' is not offered"):
        resolve_choices(PANEL, {"kernel": "6.12.117"})
    with pytest.raises(ValueError, match=r"unknown control\(s\) \['colour'\]"):
        resolve_choices(PANEL, {"colour": "red"})
