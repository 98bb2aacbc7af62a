"""Bad input at the command line's boundary (issue 13): capture bundles that lack lines or
are damaged, and the exit status and one error line every refusal gives."""

import gzip
import json
import shutil

import pytest

from percpu_explorer.captures import compare, load_bundle
from percpu_explorer.errors import InputError

from ..conftest import DATA

BUNDLE = DATA / "captures" / "debian-6.12.117-max-smp4"


def _bundle_without(tmp_path, *dropped: str, trace_header: bool = True):
    """A copy of the 4-CPU capture whose kernel log lacks the lines containing `dropped`."""
    folder = tmp_path / "bundle"
    shutil.copytree(BUNDLE, folder)
    log = (folder / "dmesg.txt").read_text().splitlines()
    (folder / "dmesg.txt").write_text(
        "\n".join(line for line in log if not any(d in line for d in dropped)) + "\n")
    if not trace_header:
        trace = gzip.decompress((folder / "trace.txt.gz").read_bytes()).decode()
        trace = trace.replace("#P:4", "")
        (folder / "trace.txt.gz").write_bytes(gzip.compress(trace.encode()))
    return folder


@pytest.mark.parametrize(("dropped", "trace_header", "source"), [
    # The capture's log: "rcu: RCU restricting CPUs from NR_CPUS=512 to nr_cpu_ids=4."
    (("pcpu-alloc:",), True, "nr_cpu_ids=4"),
    # The trace header of /sys/kernel/tracing/trace: "... #P:4" (CPUs online).
    (("pcpu-alloc:", "RCU restricting"), True, "trace header #P"),
    # "smp: Brought up 1 node, 4 CPUs".
    (("pcpu-alloc:", "RCU restricting"), False, "smp: Brought up 1 node, 4 CPUs"),
])
def test_compare_without_the_pcpu_alloc_lines_counts_units_from_the_capture(
        tmp_path, dropped, trace_header, source):
    # A console log at the default loglevel hides pcpu_dump_alloc_info()'s KERN_DEBUG
    # "pcpu-alloc:" lines; "percpu: Embedded 34 pages/cpu ..." (pr_info) stays.
    result = compare(load_bundle(_bundle_without(tmp_path, *dropped,
                                                 trace_header=trace_header)))
    assert source in result.unit_count_source
    # The full capture's replay matches every traced allocation with 4 units; so must this.
    assert result.replay is not None
    assert result.replay.allocs_matched == result.replay.allocs
    assert any("4 units (the log lacks its pcpu-alloc: lines)" in a
               for a in result.replay.assumptions)


def test_compare_says_which_line_is_missing_when_nothing_gives_the_cpu_count():
    from percpu_explorer.captures.bundle import CaptureBundle
    from percpu_explorer.captures.comparison import MISSING_UNITS, unit_count

    bundle = CaptureBundle(meta={"name": "log-only"},
                           texts={"dmesg": "[    0.000000] percpu: Embedded 34 pages/cpu "
                                           "s101464 r8192 d29608 u139264\n"})
    with pytest.raises(InputError) as exc:
        unit_count(bundle)
    assert "pcpu-alloc:" in str(exc.value) and "\n" not in str(exc.value)
    assert MISSING_UNITS in str(exc.value)


@pytest.mark.parametrize(("name", "data", "message"), [
    ("meta.json", b"[1, 2]", "meta.json: holds a JSON list, not the object of capture facts"),
    ("meta.json", b"\xff\xfe", "meta.json: not a readable JSON file"),
    ("trace.txt.gz", b"\x1f\x8b\x08\x00garbage", "trace.txt.gz: not a readable gzip file"),
    ("trace.txt.gz", gzip.compress(b"x" * 1000)[:20], "trace.txt.gz: not a readable gzip file"),
])
def test_damaged_bundle_files_are_one_line(cli, tmp_path, name, data, message):
    folder = tmp_path / "bundle"
    shutil.copytree(BUNDLE, folder)
    (folder / name).write_bytes(data)
    status, out, err = cli("compare", str(folder))
    assert status == 2 and out == "" and err.count("\n") == 1 and message in err


def test_compare_of_a_folder_that_is_no_bundle(cli, tmp_path):
    status, _, err = cli("compare", str(tmp_path))
    assert status == 2 and f"{tmp_path} is not a capture bundle: no meta.json" in err


def test_meta_config_that_is_not_an_object(cli, tmp_path):
    folder = tmp_path / "bundle"
    shutil.copytree(BUNDLE, folder)
    meta = json.loads((folder / "meta.json").read_text())
    meta["config"]["CONFIG_NR_CPUS"] = "lots"
    (folder / "meta.json").write_text(json.dumps(meta))
    status, _, err = cli("compare", str(folder))
    assert status == 2 and "meta.json's config CONFIG_NR_CPUS is 'lots', not a number" in err


def test_no_command_is_one_line(capsys):
    from percpu_explorer.cli import main

    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a command is required: one of layout" in err


def test_option_equals_double_dash_is_refused(capsys):
    from percpu_explorer.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["walk", "0xffff800000000000", "--cpu=--"])
    assert exc.value.code == 2
    assert "argument --cpu: expected one argument, not '--'" in capsys.readouterr().err


def test_work_beyond_the_machine_is_refused_before_it_starts():
    """Page tables of 4096 CPUs' 64M Local Percpu units are 2 * 4096 * 16384 entries
    (about 13 GiB in the model): under a 2 GiB address-space limit the command refuses
    at once, naming the request, instead of running out of memory."""
    import resource
    import subprocess
    import sys

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    result = subprocess.run(
        [sys.executable, "-m", "percpu_explorer.cli", "pgtables", "--nr-cpus", "4096",
         "--unit-size", "64M"], capture_output=True, text=True, timeout=120,
        preexec_fn=limit, env={"OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "mapping a first chunk of 64MB per CPU on 4096 CPUs needs about" in result.stderr
    assert "use fewer CPUs (--nr-cpus) or a smaller unit (--unit-size)" in result.stderr
