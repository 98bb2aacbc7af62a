"""Every subcommand and every file reader of the command line, fuzzed.

Each case runs in the worker child (harness.Worker) under an address-space limit and a
time limit, and must end with status 0 or 2, no traceback, and on failure one line that
names the value (harness.check). Issue 13.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .conftest import fuzz_settings
from .files import (
    REQUESTS,
    base_bundle_texts,
    bundle_folder_files,
    copy_workloads,
    core_profile_file,
    text_file,
    write_bundle,
    write_file,
)
from .harness import PROFILE, check
from .strategies import (
    CONFIG_OPTIONS,
    FLAG,
    FORMATS,
    OPS_OPTIONS,
    PERCPU_OPTIONS,
    SUBCOMMANDS,
    command_line,
    float_text,
    int_text,
)

# The slow commands get fewer examples in the quick profile (claims: ~8 s each).
SCALE = {"claims": 0.15, "interleave": 0.5, "app": 0.5} if PROFILE == "quick" else {}


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_subcommand_arguments(worker, tmp_path_factory, name):
    cwd = str(tmp_path_factory.mktemp("cwd"))

    @fuzz_settings(SCALE.get(name, 1.0))
    @given(st.data())
    def run(data):
        argv = data.draw(command_line(name))
        check(worker.run(argv, cwd=cwd), argv, kind=name)

    run()


def test_no_subcommand_or_unknown_ones(worker):
    @fuzz_settings(0.5)
    @given(st.lists(st.one_of(st.sampled_from(["--help", "-h", "nope", "--version", "layout"]),
                              int_text(0)), max_size=3))
    def run(argv):
        check(worker.run(argv), argv, kind="top-level")

    run()


def test_request_files(worker):
    @fuzz_settings()
    @given(st.data())
    def run(data):
        with tempfile.TemporaryDirectory() as folder:
            content = data.draw(st.one_of(text_file(REQUESTS), st.none()))
            path = write_file(Path(folder), data.draw(st.sampled_from(["h.csv", "h.txt"])),
                              content)
            argv = data.draw(command_line("alloc-trace", {**CONFIG_OPTIONS, **PERCPU_OPTIONS,
                                                          **FORMATS}, [str(path)]))
            check(worker.run(argv), argv, kind="request file")

    run()


COST_OPTIONS = {**OPS_OPTIONS, "--nr-cpus": int_text(1, 4, 4096), "--semantic": FLAG,
                "--ghz": float_text(0, 100), "--sys-share": float_text(0, 1),
                "--progress": FLAG, "--format": FORMATS["--format"],
                "--cpi": float_text(0, 100),
                "--census": st.sampled_from(["debian-6.12.117-max-smp2", "no-such-bundle", ""]),
                "--phase": st.sampled_from(["page_faults", "idle", "nope", ""])}


def test_workload_files(worker):
    bases: dict[str, str] = {}

    @fuzz_settings()
    @given(st.data())
    def run(data):
        with tempfile.TemporaryDirectory() as folder:
            texts = copy_workloads(Path(folder))
            bases.update(texts)
            kind = data.draw(st.sampled_from(["csv", "csv", "parquet", "parquet-bytes"]))
            if kind == "csv":
                base = texts[data.draw(st.sampled_from(sorted(texts)))]
                path = write_file(Path(folder), "w.csv", data.draw(text_file(base)))
            elif kind == "parquet":
                path = Path(folder) / "mix.parquet"
            else:
                raw = (Path(folder) / "mix.parquet").read_bytes()
                cut = data.draw(st.integers(0, len(raw)))
                flip = data.draw(st.binary(max_size=8))
                path = write_file(Path(folder), "w.parquet", raw[:cut] + flip + raw[cut + 8:])
            name = data.draw(st.sampled_from(["cost", "replay"]))
            argv = data.draw(command_line(name, COST_OPTIONS, [str(path)]))
            check(worker.run(argv), argv, kind="workload file")

    run()


def test_core_profiles(worker):
    @fuzz_settings()
    @given(st.data())
    def run(data):
        with tempfile.TemporaryDirectory() as folder:
            path = write_file(Path(folder), "core.json", data.draw(core_profile_file()))
            op = data.draw(st.sampled_from([["--op", "add"], ["--op", "cmpxchg128"], []]))
            argv = ["ops", "--core", str(path), *op]
            check(worker.run(argv), argv, kind="core profile")

    run()


def test_capture_bundles(worker):
    base = base_bundle_texts()

    @fuzz_settings()
    @given(st.data())
    def run(data):
        with tempfile.TemporaryDirectory() as folder:
            files = data.draw(bundle_folder_files(base))
            bundle = write_bundle(Path(folder) / "bundle", files)
            fmt = data.draw(st.sampled_from([[], ["--format", "json"], ["--format", "csv"]]))
            argv = ["compare", str(bundle), *fmt]
            check(worker.run(argv), argv, kind="capture bundle")

    run()
