"""The pieces of the QEMU capture procedure that need no boot, and capturing the running
machine."""

import gzip

import pytest

from percpu_explorer.captures.qemu import (
    DONE,
    PERCPU_EVENTS,
    QemuPlan,
    build_initramfs,
    init_script,
    qemu_command,
    split_console,
)
from percpu_explorer.cli import main

from .samples import VMALLOCINFO

# --- the QEMU procedure without a boot -------------------------------------------------

def test_init_script_prints_every_source_and_powers_off():
    script = init_script(cgroups=5)
    for source in ("vmcoreinfo", "vmallocinfo", "ptdump", "percpu_stats", "trace", "dmesg"):
        assert f"begin {source}@@@" in script
    assert "seq 1 5" in script and script.rstrip().endswith("poweroff -f")



@pytest.mark.parametrize(("cgroups", "workers"), [(10, 1), (10, 4), (200, 4), (3, 8)])
def test_workload_shells_share_every_cgroup_once(cgroups, workers):
    """`--workers N`: N shells at once, shell w making pe<w>, pe<w+N>, ...; run here with
    `echo` in place of mkdir/rmdir, every cgroup is made once and removed once."""
    import shutil
    import subprocess

    sh = shutil.which("busybox") or shutil.which("sh")
    script = init_script(cgroups, workers)
    loops = [line for line in script.splitlines() if "/sys/fs/cgroup/pe$i" in line]
    assert len(loops) == 2 and (("&" in loops[0]) == (workers > 1))
    for loop, command in zip(loops, ("mkdir", "rmdir"), strict=True):
        echoed = loop.replace(f"{command} /sys/fs/cgroup/pe$i", "echo $i")
        argv = [sh, "sh", "-c", echoed] if sh.endswith("busybox") else [sh, "-c", echoed]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        assert sorted(map(int, out.split())) == list(range(1, cgroups + 1))
    shells = f" in {workers} shells at once" if workers > 1 else ""
    assert f"mark 'workload: mkdir {cgroups} memory cgroups{shells}'" in script


def test_qemu_command_names_cpu_smp_and_kernel_parameters(tmp_path):
    plan = QemuPlan(cpu="cortex-a72", smp=8, kaslr=False)
    cmd = qemu_command(plan, tmp_path / "Image", tmp_path / "initrd")
    assert cmd[:4] == ["qemu-system-aarch64", "-M", "virt", "-cpu"]
    assert cmd[cmd.index("-smp") + 1] == "8"
    append = cmd[cmd.index("-append") + 1]
    assert "no_hash_pointers" in append and "nokaslr" in append
    assert "trace_event=" + ",".join(PERCPU_EVENTS) in append


def test_initramfs_is_a_newc_cpio_with_init_and_console(tmp_path):
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF fake")
    blob = gzip.decompress(build_initramfs(busybox, "#!/bin/sh\n", tmp_path / "i").read_bytes())
    names, offset = [], 0
    while True:
        header = blob[offset:offset + 110]
        assert header[:6] == b"070701"
        size, namesize = int(header[54:62], 16), int(header[94:102], 16)
        name = blob[offset + 110:offset + 110 + namesize - 1].decode()
        if name == "TRAILER!!!":
            break
        names.append(name)
        offset += 110 + namesize
        offset += -offset % 4 + size
        offset += -offset % 4
    assert {"init", "bin/busybox", "dev/console"} <= set(names)


def test_split_console_keeps_successful_sections_only():
    console = ("boot noise\n@@@percpu-explorer begin vmcoreinfo@@@\nPAGESIZE=4096\n"
               "@@@percpu-explorer end vmcoreinfo rc=0@@@\n"
               "@@@percpu-explorer begin ptdump@@@\ncat: can't open\n"
               "@@@percpu-explorer end ptdump rc=1@@@\n" + DONE + "\n")
    assert split_console(console) == {"vmcoreinfo": "PAGESIZE=4096\n"}


# --- capturing from the command line and the running machine ---------------------------

def test_cli_capture_needs_a_source(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["capture", "--out", "x"])
    assert exit_info.value.code == 2


def test_capture_local_reads_what_exists_and_says_what_is_absent(monkeypatch, tmp_path):
    from percpu_explorer.captures import qemu

    (tmp_path / "vmallocinfo").write_text(VMALLOCINFO)
    files = {name: str(tmp_path / name) for name in qemu._LOCAL_FILES}
    monkeypatch.setattr(qemu, "_LOCAL_FILES", files)
    monkeypatch.setattr(qemu.platform, "machine", lambda: "aarch64")

    def no_kcore():
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(qemu, "_read_kcore_notes", no_kcore)
    monkeypatch.setattr(qemu, "_run", lambda cmd, what, **kw: "[    0.0] hello\n")
    said = []
    bundle = qemu.capture_local(progress=said.append)
    assert bundle.texts["vmallocinfo"] == VMALLOCINFO
    assert "ptdump" in bundle.meta["absent"] and "vmcoreinfo" in bundle.meta["absent"]
    assert bundle.meta["absent_reasons"]["vmcoreinfo"] == "/proc/kcore: Operation not permitted"
    assert any(line.startswith("skipped ptdump") for line in said)


def test_capture_local_refuses_a_non_arm64_machine(monkeypatch):
    from percpu_explorer.captures import qemu

    monkeypatch.setattr(qemu.platform, "machine", lambda: "x86_64")
    with pytest.raises(qemu.CaptureError, match="use --qemu"):
        qemu.capture_local()
