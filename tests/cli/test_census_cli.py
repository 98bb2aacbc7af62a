"""`percpu-explorer census` and `cost --census` on the shipped census bundles."""

import json

from percpu_explorer.claims import census_review

MAX = "debian-6.12.117-max-smp2"


def test_census_shows_phases_checks_and_top_functions(cli):
    status, out, err = cli("census", MAX)
    assert status == 0 and err == ""
    assert "Held to the kernel's own counters:" in out and "Top functions" in out
    assert "handle_mm_fault" in out and "False" not in out


def test_census_json_and_csv(cli):
    status, out, _ = cli("census", MAX, "--format", "json")
    data = json.loads(out)
    assert status == 0 and data["name"] == MAX
    assert [p["phase"] for p in data["phases"]][:2] == ["boot", "idle"]
    assert all(c["equal"] for c in data["checks"])
    status, out, _ = cli("census", MAX, "--format", "csv")
    assert status == 0 and out.splitlines()[0].startswith("phase,description,kernel_insns")


def test_cost_census_prints_the_finding_with_its_numbers(cli):
    status, out, err = cli("cost", "--census", MAX)
    assert status == 0 and err == ""
    finding = census_review(MAX).finding()
    assert finding.answer in out
    status, out, _ = cli("replay", "--census", MAX, "--format", "json")
    data = json.loads(out)
    assert data["numbers"]["share_max"] == finding.numbers["share_max"]
    assert {r["world"] for r in data["savings"]} == {"6.12.117 VOLUNTARY", "7.1 FULL",
                                                     "7.1 LAZY"}


def test_bad_census_input_is_one_line(cli, capsys):
    for argv, expected in (
        (("census",), "give a census bundle"),
        (("census", "--qemu"), "--qemu needs --out"),
        (("census", "no-such"), "choose a folder or one of"),
        (("census", "--qemu", "--cpu", "cortex-a57", "--vhe", "--out", "/tmp/x"),
         "vhe needs a CPU with VHE"),
        (("census", "--qemu", "--workload", "nope", "--out", "/tmp/x"), "nope"),
        (("cost",), "a workload file is required"),
        (("cost", "--census", "no-such"), "choose a folder or one of"),
        (("cost", "x.csv", "--census", MAX), "not both"),
    ):
        try:
            status, out, err = cli(*argv)
        except SystemExit as exc:  # argparse's refusals exit from the parser
            status, (out, err) = exc.code, capsys.readouterr()
        assert status == 2 and out == "", argv
        assert expected in err and len(err.strip().splitlines()) == 1, (argv, err)


def test_a_census_phase_is_priced_like_a_workload_file(cli, tmp_path):
    # `census --to-workload` writes the counted workload; `cost FILE` and
    # `cost --census --phase` give the same totals (one pricing path)
    out_file = tmp_path / "pf.csv"
    status, out, err = cli("census", MAX, "--to-workload", "page_faults", "--out",
                           str(out_file))
    assert status == 0 and err == "" and "ops counted" in out
    assert out_file.read_text().splitlines()[0] == \
        "time,cpu,task,op,size,variable,value,flavour,count"
    status, from_file, _ = cli("cost", str(out_file), "--format", "json")
    status2, from_census, _ = cli("replay", "--census", MAX, "--phase", "page_faults",
                                  "--format", "json")
    assert status == status2 == 0
    a, b = json.loads(from_file), json.loads(from_census)
    assert a["totals"] == b["totals"] and a["events"] == b["events"] > 100_000
    status, text, _ = cli("cost", "--census", MAX, "--phase", "page_faults")
    assert "this_cpu ops counted (all CPUs together, no time span)" in text
    assert "Per CPU:" not in text and "op rate: unknown" in text and "nan" not in text


def test_bad_census_phase_input_is_one_line(cli):
    for argv, expected in (
        (("cost", "--phase", "memcg"), "--phase 'memcg' needs --census"),
        (("cost", "--census", MAX, "--phase", "nope"), "choose from boot, idle"),
        (("cost", "--census", MAX, "--phase", "memcg", "--semantic"), "no per-op values"),
        (("census", MAX, "--to-workload", "memcg", "--out", "/tmp/x.txt"),
         "must end in .csv or .parquet"),
    ):
        status, out, err = cli(*argv)
        assert status == 2 and out == "", argv
        assert expected in err and len(err.strip().splitlines()) == 1, (argv, err)
