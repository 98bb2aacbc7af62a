"""The `percpu-explorer` command line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from percpu_explorer.cli import main


def test_layout_table_reads_like_memory_rst(cli):
    status, out, err = cli("layout", "--page-size", "4K", "--va-bits", "48")
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[2].split() == ["Start", "End", "Size", "Use"]
    # Rows carry the real ptdump values of a v6.16+ 4K/48 kernel (inclusive ends as memory.rst).
    assert any(line.split()[:3] == ["0xffff800000000000", "0xffff80007fffffff", "2GB"]
               and line.endswith("modules") for line in lines)
    assert any(line.split()[:2] == ["0xffff800080000000", "0xfffffdffbf7fffff"] for line in lines)
    assert "No problems: the layout is sane." in out


def test_layout_table_shows_problems_of_a_broken_patched_layout(cli):
    status, out, _ = cli("layout", "--page-size", "16K", "--va-bits", "48",
                         "--local-percpu")
    assert status == 0
    assert "Problems:" in out and "[vmalloc-empty]" in out and "[outside-ttbr1]" in out
    assert any(line.split()[3:] == ["vmalloc", "<-", "problem"] for line in out.splitlines())


def test_layout_json_shape_and_hex_strings(cli):
    status, out, _ = cli("layout", "--local-percpu", "--format", "json")
    data = json.loads(out)
    assert status == 0
    assert set(data) == {"config", "symbols", "regions", "markers", "problems", "warnings"}
    assert data["symbols"]["PERCPU_SIZE"] == "0x0000010000000000"
    assert data["symbols"]["VMALLOC_END"] == "0xfffffb7fff800000"
    assert all(len(v) == 18 and v.startswith("0x") for v in data["symbols"].values())
    assert data["config"]["local_percpu"] is True


def test_layout_csv(cli):
    status, out, _ = cli("layout", "--kernel", "6.8", "--kasan", "generic",
                         "--format", "csv")
    rows = out.splitlines()
    assert status == 0 and rows[0] == "start,end,last,size,size_text,use,problem"
    # memory.rst (v6.8): "ffff600000000000 ffff7fffffffffff 32TB [kasan shadow region]".
    assert any(r.startswith("0xffff600000000000,0xffff800000000000,0xffff7fffffffffff,")
               and r.endswith("kasan shadow,False") for r in rows)


def test_configs_lists_every_configuration(cli):
    status, out, _ = cli("configs", "--kasan", "none")
    lines = out.splitlines()
    assert status == 0
    rows = [line for line in lines if line[:2] in ("4K", "16", "64")]
    assert len(rows) == 13
    assert sum("BROKEN" in r for r in rows) == 5  # 4K/52 x2, 16K/48, 16K/52 x2
    assert any(r.startswith("4K/48 ") and r.rstrip().endswith("sane") and " 1TB " in r
               for r in rows)


def test_configs_for_an_old_kernel_has_no_patch(cli):
    status, out, _ = cli("configs", "--kernel", "6.1", "--format", "json")
    rows = json.loads(out)
    assert status == 0 and len(rows) == 25
    assert {r["patched_problems"] for r in rows} == {"patch needs the v6.9+ layout"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["layout", "--page-size", "8K"],
         "argument --page-size: '8K' is not an arm64 granule; choose one of 4K, 16K, 64K"),
        (["layout", "--va-bits", "52", "--vabits-actual", "56"],
         "argument --vabits-actual: '56' is outside 36..52"),
        (["layout", "--va-bits", "47"],
         "argument --va-bits: va_bits 47 is not offered with 4K pages in kernel 7.1; "
         "choose one of 39, 48, 52"),
        (["layout", "--kernel", "4.19"], "argument --kernel: kernel version 4.19 is not modelled"),
        (["layout", "--format", "yaml"],
         "argument --format: format 'yaml' is unknown; choose one of table, csv, json"),
        (["layout", "--va-bits", "forty"], "argument --va-bits: 'forty' is not a whole number"),
        (["layout", "--kernel", "6.8", "--local-percpu"],
         "argument --local-percpu: local_percpu: RFC patch 02/11 is written for the v6.9+ "
         "layout"),
        # Issue 13's reproductions, each now one line naming the value and what is valid.
        (["configs", "--kasan", "bogus"],
         "argument --kasan: 'bogus' is unknown; choose one of none, generic, sw-tags"),
        # CONFIG_NR_CPUS: arch/arm64/Kconfig "range 2 4096".
        (["layout", "--nr-cpus", "4097"], "argument --nr-cpus: '4097' is outside 2..4096"),
        (["first-chunk", "--static-size", "40000", "--nr-cpus", "4", "--reserved-size", "-1"],
         "argument --reserved-size: '-1' is negative"),
        # struct pcpu_chunk (mm/percpu-internal.h) counts a unit's bytes in an int.
        (["first-chunk", "--static-size", "40000", "--nr-cpus", "4", "--dyn-size",
          "999999999999"], "outside 0..2147483647"),
        (["first-chunk", "--static-size", "99999999999999999", "--nr-cpus", "4"],
         "argument --static-size: '99999999999999999' is 99999999999999999 bytes, outside "
         "1..2147483647"),
        (["walk", "0xffff800000000000", "--cpu", "7", "--nr-cpus", "4"],
         "argument --cpu: cpu 7 is outside 0..3"),
        (["walk", "0x1ffff800000000000"], "does not fit in 64 bits"),
        (["ops", "--resched-probability", "nan"],
         "argument --resched-probability: 'nan' is not a number; use one in [0, 1]"),
        (["ops", "--core", "no-such-core"], "argument --core: 'no-such-core' is unknown"),
        (["cost", "no-such-file.csv"], "no-such-file.csv: no such workload file"),
    ],
)
def test_bad_values_exit_2_with_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:  # argparse errors raise, model errors return
        raise SystemExit(main(argv))
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("percpu-explorer: error: ")
    assert message in err


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "percpu-explorer"
    result = subprocess.run([str(script), "layout", "--format", "json"],
                            capture_output=True, text=True, check=True)
    assert json.loads(result.stdout)["symbols"]["FIXADDR_TOT_START"] == "0xffffffffff22d000"
