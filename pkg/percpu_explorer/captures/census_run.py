"""Count every this_cpu site of Debian's arm64 kernel under real workloads (`census --qemu`).

The run uses Debian's packages only:

1. `qemu-plugin.h` of the installed QEMU comes from Debian's `qemu` source package:
   a private apt folder with a `Types: deb-src` entry for the system's own archive,
   `apt-get source --download-only qemu`, and only that header taken from the orig
   tarball (cached in the work folder).
2. The plugin (`plugin/thiscpu_census.c`, package data) is compiled with gcc against
   that header and glib (`libglib2.0-dev`).
3. A plain boot (`nokaslr`, no plugin) runs the workloads and prints /proc/kallsyms:
   the .deb's System.map is a stub, and `nokaslr` keeps every address the same in the
   census boot (which prints it too: they must agree). The out-of-line copies of the
   per-CPU offset read (`__kern_my_cpu_offset`) are taken from it, and its times (wall
   per phase, QEMU's CPU seconds) are the reference for the census boot's slowdown.
4. The census boot (`-accel tcg,thread=single`: one host thread runs every vCPU, so the
   plugin's inline counters are exact) runs the same workloads with the plugin.

Phases. Before and after each workload the guest runs `census-mark`, a 200-byte static
arm64 program written here: it touches its stack buffer, executes an unallocated HINT
(a NOP for the CPU, the marker word the plugin snapshots its counters at), then reads
/proc/vmstat and /proc/stat into its buffer and writes them out. Between the marker and
the kernel summing its counters no page is faulted in (the buffer is touched before the
marker, the file names sit in the code page), so a counter's delta between two marks
and the plugin's count between the same two markers cover the same events.
"""

from __future__ import annotations

import base64
import gzip
import re
import resource
import shlex
import shutil
import struct
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .bundle import config_facts, kernel_version_from_release, preemption_model
from .census import (
    CENSUS_CPUS,
    MARKER_WORD,
    WORKLOADS,
    CensusBundle,
    parse_census_output,
    parse_kallsyms,
)
from .qemu import (
    BEGIN,
    BUSYBOX_PACKAGE,
    DEFAULT_KERNEL_PACKAGE,
    DONE,
    END,
    CaptureError,
    _run,
    build_initramfs,
    fetch_package,
    find_kernel,
    split_console,
)

DEFAULT_CENSUS_WORK = Path("/tmp/census-work")
PHASE = "@@@census phase "
Say = Callable[[str], None]


# --- the guest's two programs -----------------------------------------------------------

def _movz(rd: int, imm: int, shift: int = 0) -> int:
    return 0xD2800000 | (shift // 16) << 21 | (imm & 0xFFFF) << 5 | rd


def _adr(rd: int, offset: int) -> int:
    return 0x10000000 | (offset & 3) << 29 | ((offset >> 2) & 0x7FFFF) << 5 | rd


def _svc() -> int:
    return 0xD4000001


def _mov(rd: int, rm: int) -> int:  # orr xd, xzr, xm
    return 0xAA0003E0 | rm << 16 | rd


def _add_sp(rd: int, pages: int = 0) -> int:  # add xd, sp, #pages, lsl #12
    return 0x91400000 | pages << 10 | 31 << 5 | rd


def _elf(words: list[int], data: bytes = b"") -> bytes:
    """A static arm64 ELF executable: one read+execute segment at 0x400000 holding
    `words` (the entry) followed by `data`."""
    base, header = 0x400000, 64 + 56
    code = struct.pack(f"<{len(words)}I", *words) + data
    size = header + len(code)
    ehdr = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, 2, 183, 1,
                       base + header, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x10000)
    return ehdr + phdr + code


def marker_program(files: tuple[str, ...] = ("/proc/vmstat", "/proc/stat")) -> bytes:
    """`census-mark`: touch 64K of stack, execute the marker HINT, then copy each of
    `files` to stdout (read until end of file) and exit 0."""
    w: list[int] = [0xD1400000 | 16 << 10 | 31 << 5 | 31]  # sub sp, sp, #16, lsl #12
    for page in range(16):  # fault the buffer in before the marker
        w += [_add_sp(9, page), 0xF900013F]  # add x9, sp, #page, lsl #12; str xzr, [x9]
    w.append(MARKER_WORD)
    fixups: list[tuple[int, int]] = []  # (index of adr, file number)
    for number, _ in enumerate(files):
        fixups.append((len(w) + 1, number))
        w += [0x92800C60,  # movn x0, #99: AT_FDCWD
              0, _movz(2, 0), _movz(8, 56), _svc(),  # adr x1, path; openat
              _mov(19, 0)]
        loop = len(w)
        w += [_mov(0, 19), _add_sp(1), _movz(2, 1, 16), _movz(8, 63), _svc(),  # read 64K
              0xF100001F]  # cmp x0, #0
        done = len(w)
        w.append(0)  # b.le done (patched below)
        w += [_mov(2, 0), _movz(0, 1), _add_sp(1), _movz(8, 64), _svc()]  # write(1, buf, n)
        w.append(0x14000000 | ((loop - len(w)) & 0x3FFFFFF))  # b loop
        w[done] = 0x54000000 | ((len(w) - done) & 0x7FFFF) << 5 | 13  # b.le
    w += [_movz(0, 0), _movz(8, 93), _svc()]  # exit(0)
    strings = b""
    offsets = []
    for name in files:
        offsets.append(len(strings))
        strings += name.encode() + b"\0"
    for index, number in fixups:
        w[index] = _adr(1, 4 * (len(w) - index) + offsets[number])
    return _elf(w, strings)


def pingpong_program(rounds: int = 5000) -> bytes:
    """`census-pingpong`: two pipes and a fork; the parent writes one byte and waits for
    the child to send it back, `rounds` times (each round wakes the other task twice),
    then closes its write end, reaps the child and exits 0."""
    def ldr_w0(offset: int) -> int:  # ldr w0, [sp, #offset]
        return 0xB94003E0 | (offset // 4) << 10

    buf = 0x910043E1  # add x1, sp, #16
    w: list[int] = [0xD10103FF,  # sub sp, sp, #64
                    0x910003E0, _movz(1, 0), _movz(8, 59), _svc(),  # pipe2(sp): r1, w1
                    0x910023E0, _movz(1, 0), _movz(8, 59), _svc(),  # pipe2(sp+8): r2, w2
                    _movz(0, 17), _movz(1, 0), _movz(2, 0), _movz(3, 0), _movz(4, 0),
                    _movz(8, 220), _svc()]  # clone(SIGCHLD): fork
    cbz = len(w)
    w.append(0)  # cbz x0, child (patched below)
    w.append(_movz(19, rounds))
    loop = len(w)
    w += [ldr_w0(4), buf, _movz(2, 1), _movz(8, 64), _svc(),  # write(w1, buf, 1)
          ldr_w0(8), buf, _movz(2, 1), _movz(8, 63), _svc(),  # read(r2, buf, 1)
          0xF1000673]  # subs x19, x19, #1
    w.append(0x54000000 | ((loop - len(w)) & 0x7FFFF) << 5 | 1)  # b.ne loop
    w += [ldr_w0(4), _movz(8, 57), _svc(),  # close(w1): the child reads end of file
          0x92800000, _movz(1, 0), _movz(2, 0), _movz(3, 0), _movz(8, 260), _svc(),  # wait4
          _movz(0, 0), _movz(8, 93), _svc()]  # exit(0)
    child = len(w)
    w[cbz] = 0xB4000000 | ((child - cbz) & 0x7FFFF) << 5  # cbz x0, child
    w += [ldr_w0(4), _movz(8, 57), _svc()]  # close(w1) in the child
    cloop = len(w)
    w += [ldr_w0(0), buf, _movz(2, 1), _movz(8, 63), _svc(),  # read(r1, buf, 1)
          0xF100001F]  # cmp x0, #0
    ble = len(w)
    w.append(0)  # b.le out
    w += [ldr_w0(12), buf, _movz(2, 1), _movz(8, 64), _svc()]  # write(w2, buf, 1)
    w.append(0x14000000 | ((cloop - len(w)) & 0x3FFFFFF))  # b cloop
    w[ble] = 0x54000000 | ((len(w) - ble) & 0x7FFFF) << 5 | 13  # b.le out
    w += [_movz(0, 0), _movz(8, 93), _svc()]  # out: exit(0)
    return _elf(w)


def exit_program() -> bytes:
    """`census-exit`: exit(0) at once (the fork+exec workload's child)."""
    return _elf([_movz(0, 0), _movz(8, 93), _svc()])


# --- plan and init script ----------------------------------------------------------------

@dataclass(frozen=True)
class CensusPlan:
    """One census run.

    cpu: QEMU `-cpu`: "max" (LSE atomics: this_cpu RMW ops are single LSE instructions)
        or "cortex-a57" (ARMv8.0, no LSE: LL/SC loops). vhe: `-M virt,virtualization=on`,
        the kernel runs at EL2 and reads the offset from TPIDR_EL2 (needs cpu max).
    workloads: names of `census.WORKLOADS`, run in this order (each one phase).
    """

    cpu: str = "max"
    smp: int = 2
    memory_mb: int = 1024
    vhe: bool = False
    workloads: tuple[str, ...] = tuple(WORKLOADS)
    timeout_s: int = 2400
    kernel_package: str = DEFAULT_KERNEL_PACKAGE
    extra_append: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.cpu not in CENSUS_CPUS:
            raise ValueError(f"cpu {self.cpu!r} is not offered; choose one of "
                             f"{', '.join(CENSUS_CPUS)}")
        if self.vhe and self.cpu != "max":
            raise ValueError(f"vhe needs a CPU with VHE: cpu {self.cpu!r} has none; "
                             "choose cpu max")
        for name in self.workloads:
            if name not in WORKLOADS:
                raise ValueError(f"workload {name!r} is unknown; choose from "
                                 f"{', '.join(WORKLOADS)}")

    @property
    def label(self) -> str:
        return f"{self.cpu}{'-vhe' if self.vhe else ''}-smp{self.smp}"

    def append(self) -> str:
        return " ".join(["console=ttyAMA0", "quiet", "nokaslr", "rdinit=/init",
                         *self.extra_append])


def census_init_script(workloads: tuple[str, ...], kallsyms: bool) -> str:
    """The busybox `/init`: set up, mark, run each workload then mark, print the marks
    (and /proc/kallsyms when asked), power off."""
    lines = [
        "#!/bin/busybox sh",
        "/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin",
        "/bin/busybox --install -s",
        "export PATH=/bin:/sbin:/usr/bin:/usr/sbin",
        "mkdir -p /proc /sys /dev /tmp /run /mnt/t",
        "mount -t proc proc /proc",
        "mount -t sysfs sysfs /sys",
        "mount -t devtmpfs devtmpfs /dev 2>/dev/null",
        "mount -t tmpfs tmpfs /run",
        "mount -t tmpfs tmpfs /mnt/t",
        "mkdir -p /sys/fs/cgroup",
        "mount -t cgroup2 none /sys/fs/cgroup",
        'echo "+memory" > /sys/fs/cgroup/cgroup.subtree_control',
        "ifconfig lo 127.0.0.1 up 2>/dev/null",
        "dmesg -n 1",
        "n=0",
        'mark() { census-mark > /run/m$n; echo "$1" > /run/n$n; n=$((n+1)); }',
        "mark boot",
    ]
    for name in workloads:
        lines.append(f"echo '{PHASE}{name}@@@'")
        lines += WORKLOADS[name].script
        lines.append(f"mark {name}")
    lines.append(f"echo '{PHASE}done@@@'")
    lines += [
        "i=0",
        "while [ $i -lt $n ]; do",
        f"  echo \"{BEGIN}mark$i@@@\"; cat /run/n$i /run/m$i; echo \"{END}mark$i rc=$?@@@\"",
        "  i=$((i+1))",
        "done",
        f"echo '{BEGIN}uname@@@'; uname -a; echo \"{END}uname rc=$?@@@\"",
    ]
    if kallsyms:
        lines += [f"echo '{BEGIN}kallsyms@@@'",
                  "gzip -c /proc/kallsyms | base64; echo \"" + END + "kallsyms rc=$?@@@\""]
    lines += [f"echo '{DONE}'", "poweroff -f", ""]
    return "\n".join(lines)


# --- header, plugin, boots ---------------------------------------------------------------

def _apt_options(folder: Path) -> list[str]:
    return ["-o", "Dir::Etc::sourcelist=/dev/null", "-o", f"Dir::Etc::sourceparts={folder}",
            "-o", f"Dir::State::Lists={folder / 'lists'}"]


def plugin_header(work: Path, say: Say = print) -> Path:
    """include/qemu/qemu-plugin.h of Debian's `qemu` source package (cached in `work`)."""
    include = work / "qemu-include"
    header = include / "qemu-plugin.h"
    if header.is_file():
        return header
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if not sources.is_file():
        raise CaptureError(f"{sources} is missing: the deb-src entry is made from it")
    folder = work / "apt-src"
    (folder / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    text = sources.read_text()
    (folder / "debian-src.sources").write_text(text.replace("Types: deb\n", "Types: deb-src\n"))
    say("apt-get update of a private deb-src list (Debian's own archive)")
    _run(["apt-get", *_apt_options(folder), "update", "-q"], "apt-get update (deb-src)")
    src = work / "qemu-source"
    src.mkdir(exist_ok=True)
    if not sorted(src.glob("qemu_*.orig.tar.*")):
        # the source version of the installed emulator (its header is the plugin ABI)
        # (the binary's version less a binNMU suffix "+bN" is the source's)
        try:
            version = re.sub(r"\+b\d+$", "", _run(
                ["dpkg-query", "-W", "-f=${Version}", "qemu-system-arm"],
                "finding the installed QEMU's version").strip())
        except CaptureError:
            version = ""
        wanted = f"qemu={version}" if version else "qemu"
        say(f"apt-get source --download-only {wanted}")
        try:
            _run(["apt-get", *_apt_options(folder), "source", "--download-only", "-q", wanted],
                 "downloading the qemu source package", cwd=src)
        except CaptureError:
            if wanted == "qemu":
                raise
            say(f"{wanted} is not in the archive: taking its newest qemu source instead")
            _run(["apt-get", *_apt_options(folder), "source", "--download-only", "-q", "qemu"],
                 "downloading the qemu source package", cwd=src)
    tarballs = sorted(src.glob("qemu_*.orig.tar.*"))
    if not tarballs:
        raise CaptureError(f"apt-get source qemu left no orig tarball in {src}")
    _run(["tar", "xf", tarballs[-1].name, "--wildcards", "*/include/qemu/qemu-plugin.h"],
         "extracting qemu-plugin.h", cwd=src)
    found = sorted(src.glob("*/include/qemu/qemu-plugin.h"))
    if not found:
        raise CaptureError(f"{tarballs[-1].name} holds no include/qemu/qemu-plugin.h")
    include.mkdir(exist_ok=True)
    shutil.copy(found[-1], header)
    return header


def plugin_source() -> str:
    """The plugin's C source (package data)."""
    return (resources.files("percpu_explorer.captures") / "plugin" / "thiscpu_census.c"
            ).read_text()


def build_plugin(work: Path, say: Say = print) -> Path:
    """Compile the plugin against the installed QEMU's header and glib."""
    header = plugin_header(work, say)
    src = work / "thiscpu_census.c"
    src.write_text(plugin_source())
    out = work / "thiscpu_census.so"
    try:
        glib = _run(["pkg-config", "--cflags", "--libs", "glib-2.0"], "finding glib").split()
    except CaptureError as exc:
        raise CaptureError(f"{exc} (apt-get install libglib2.0-dev pkg-config)") from None
    _run(["gcc", "-O2", "-shared", "-fPIC", "-Wall", "-I", str(header.parent), str(src),
          "-o", str(out), *glib], "compiling the census plugin")
    return out


def qemu_census_command(plan: CensusPlan, kernel: Path, initrd: Path,
                        plugin: str | None = None) -> list[str]:
    """qemu-system-aarch64, single-threaded TCG (exact inline counters), serial on stdout."""
    cpu = "max,pauth-impdef=on" if plan.cpu == "max" else plan.cpu
    machine = "virt,virtualization=on" if plan.vhe else "virt"
    command = ["qemu-system-aarch64", "-M", machine, "-cpu", cpu, "-smp", str(plan.smp),
               "-m", str(plan.memory_mb), "-accel", "tcg,thread=single",
               "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
               "-kernel", str(kernel), "-initrd", str(initrd), "-append", plan.append()]
    if plugin:
        command += ["-plugin", plugin]
    return command


def boot_timed(command: list[str], timeout_s: int, log: Path) -> tuple[str, dict[str, float]]:
    """Run QEMU until the guest powers off; returns the console text and the seconds
    from start at which each `@@@census phase NAME@@@` line appeared ("end": when QEMU
    exited, "cpu": QEMU's CPU seconds, user and system)."""
    if shutil.which(command[0]) is None:
        raise CaptureError(f"{command[0]} is not installed: apt-get install qemu-system-arm")
    started = time.monotonic()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seen: dict[str, float] = {}
    chunks: list[bytes] = []
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        assert proc.stdout is not None
        try:
            for line in iter(proc.stdout.readline, b""):
                out.write(line)
                chunks.append(line)
                if line.startswith(PHASE.encode()):
                    seen[line.decode(errors="replace").strip()[len(PHASE):-3]] = \
                        time.monotonic() - started
                if time.monotonic() - started > timeout_s:
                    raise CaptureError(f"the guest did not power off within {timeout_s}s; "
                                       f"the console so far is in {log}")
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    seen["end"] = time.monotonic() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # QEMU's own CPU time (user + system): far less sensitive than wall time to other
    # work on the machine
    seen["cpu"] = (cpu_after.ru_utime - cpu_before.ru_utime
                   + cpu_after.ru_stime - cpu_before.ru_stime)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "")
    if DONE not in text:
        tail = "\n".join(text.splitlines()[-15:])
        raise CaptureError(f"the boot did not finish (QEMU exit {proc.returncode}); "
                           f"last console lines:\n{tail}")
    return text, seen


def _marks(texts: dict[str, str]) -> list[tuple[str, str]]:
    """(phase name, counters text) of each mark, in order."""
    marks = []
    i = 0
    while f"mark{i}" in texts:
        name, _, body = texts[f"mark{i}"].partition("\n")
        marks.append((name.strip(), body))
        i += 1
    return marks


def _phase_seconds(seen: dict[str, float], workloads: tuple[str, ...]) -> dict[str, float]:
    """Wall seconds of each phase from the console's phase lines (boot: up to the first)."""
    names = [*workloads, "done"]
    out = {"boot": seen.get(names[0], float("nan"))}
    for name, after in zip(workloads, names[1:], strict=True):
        out[name] = seen.get(after, float("nan")) - seen.get(name, float("nan"))
    return out


def run_census(plan: CensusPlan, work: Path = DEFAULT_CENSUS_WORK,
               progress: Say | None = print) -> CensusBundle:
    """Fetch, build, boot plainly, boot with the plugin; returns the census bundle."""
    say: Say = progress if callable(progress) else (lambda _msg: None)
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    say(f"fetching {plan.kernel_package}:arm64 and {BUSYBOX_PACKAGE}:arm64 into {work}")
    image, config_file = find_kernel(fetch_package(plan.kernel_package, work))
    busybox = fetch_package(BUSYBOX_PACKAGE, work) / "bin" / "busybox"
    timings["download_packages"] = time.monotonic() - t0
    t0 = time.monotonic()
    plugin_header(work, say)
    timings["plugin_header"] = time.monotonic() - t0
    t0 = time.monotonic()
    plugin = build_plugin(work, say)
    timings["plugin_build"] = time.monotonic() - t0
    programs = {"census-mark": marker_program(), "census-exit": exit_program(),
                "census-pingpong": pingpong_program()}
    run_dir = work / plan.label
    run_dir.mkdir(exist_ok=True)

    plain_initrd = build_initramfs(busybox, census_init_script(plan.workloads, kallsyms=True),
                                   run_dir / "plain.cpio.gz", programs)
    command = qemu_census_command(plan, image, plain_initrd)
    say(f"plain boot (no plugin, nokaslr: symbols and reference times): {shlex.join(command)}")
    plain_text, plain_seen = boot_timed(command, plan.timeout_s, run_dir / "plain-console.log")
    timings["plain_boot_total"] = plain_seen["end"]
    timings["plain_boot_cpu"] = plain_seen["cpu"]
    plain = split_console(plain_text)
    if "kallsyms" not in plain:
        raise CaptureError(f"the plain boot printed no /proc/kallsyms (see {run_dir})")
    kallsyms_text = gzip.decompress(base64.b64decode("".join(plain["kallsyms"].split()))
                                    ).decode()
    symbols = parse_kallsyms(kallsyms_text)
    copies = symbols[symbols["name"] == "__kern_my_cpu_offset"]["addr"]
    (run_dir / "copies.txt").write_text("".join(f"{a:x}\n" for a in copies))

    # the same guest work as the plain boot (kallsyms too), so their times compare
    census_initrd = build_initramfs(busybox, census_init_script(plan.workloads, kallsyms=True),
                                    run_dir / "census.cpio.gz", programs)
    out = run_dir / "census.txt"
    plugin_arg = (f"{plugin},out={out},copies={run_dir / 'copies.txt'},"
                  f"marker={MARKER_WORD:08x}")
    command = qemu_census_command(plan, image, census_initrd, plugin_arg)
    say(f"census boot (plugin, -accel tcg,thread=single): {shlex.join(command)}")
    text, seen = boot_timed(command, plan.timeout_s, run_dir / "census-console.log")
    timings["census_boot_total"] = seen["end"]
    timings["census_boot_cpu"] = seen["cpu"]
    texts = split_console(text)
    if texts.get("kallsyms") != plain["kallsyms"]:
        raise CaptureError("the census boot's /proc/kallsyms differs from the plain boot's: "
                           "the addresses moved (is nokaslr on the command line?)")
    marks = _marks(texts)
    plain_marks = _marks(plain)
    if [m[0] for m in marks] != ["boot", *plan.workloads]:
        raise CaptureError(f"the census boot marked {[m[0] for m in marks]}, expected "
                           f"{['boot', *plan.workloads]} (see {run_dir})")
    snaps, sites, words = parse_census_output(out.read_text())
    if len(snaps) != len(marks) + 1:
        raise CaptureError(f"the plugin took {len(snaps) - 1} marker snapshots for "
                           f"{len(marks)} marks (see {out})")
    release = texts.get("uname", "").split()[2] if len(texts.get("uname", "").split()) > 2 \
        else ""
    facts = config_facts(config_file.read_text())
    qemu_version = _run(["qemu-system-aarch64", "--version"], "qemu version").splitlines()[0]
    meta = {
        "source": "qemu census",
        "kernel_package": plan.kernel_package,
        "kernel_release": release,
        "kernel_version": kernel_version_from_release(release) if release else None,
        "preemption": preemption_model(facts),
        "config": facts,
        "qemu_version": qemu_version,
        "qemu_command": [("<kernel>" if a == str(image) else "<initrd>" if a == str(
            census_initrd) else "<plugin>" if a == plugin_arg else a) for a in command],
        "plugin_args": {"marker": f"0x{MARKER_WORD:08x}",
                        "copies": [f"0x{a:016x}" for a in copies]},
        "cpu": plan.cpu, "smp": plan.smp, "memory_mb": plan.memory_mb, "vhe": plan.vhe,
        "workloads": list(plan.workloads),
        "phase_seconds_census": _phase_seconds(seen, plan.workloads),
        "phase_seconds_plain": _phase_seconds(plain_seen, plan.workloads),
        "timings_s": timings,
    }
    counters = {name: body for name, body in marks}
    plain_counters = {name: body for name, body in plain_marks}
    return CensusBundle.from_run(meta, snaps, sites, words, symbols, counters,
                                 plain_counters)
