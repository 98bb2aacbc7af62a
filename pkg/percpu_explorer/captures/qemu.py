"""Capture what a real arm64 kernel reports, by booting Debian's kernel under QEMU.

The procedure uses Debian's packages only and installs nothing for the foreign
architecture:

1. `apt-get download` the arm64 kernel image package
   (`linux-image-<version>-arm64-unsigned`) and `busybox-static:arm64`, and unpack
   both with `dpkg-deb -x` into a scratch folder (default /tmp/capture-work).
2. Write a tiny initramfs (a newc cpio, written here in Python) whose `/init` is a
   busybox shell script: it mounts proc, sysfs, debugfs and tracefs, optionally runs
   a workload (creating and removing memory cgroups, each of which allocates percpu
   statistics), prints every file the parsers in `percpu_explorer.captures` read
   between `@@@percpu-explorer begin NAME@@@` / `end` lines, and powers off.
3. Boot it with `qemu-system-aarch64 -M virt -cpu CPU -smp N`, the kernel command
   line naming the percpu trace events, a trace buffer large enough for a whole
   boot, `no_hash_pointers` (so logged addresses are real) and `nokaslr` or not.
4. Split the serial console into the raw texts and save a capture bundle. A boot that
   fails (a panic, a fault before the console exists) can be kept as evidence instead
   (`QemuPlan.keep_failed`, `failed_boot_bundle`): its console, and with
   `log_exceptions` QEMU's exception log and CPU 0's registers.

`capture_local()` reads the same files from the running machine instead (arm64,
root), skipping what is absent and saying so.
"""

from __future__ import annotations

import gzip
import os
import platform
import re
import shlex
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .bundle import (
    SOURCES,
    CaptureBundle,
    config_facts,
    kernel_version_from_release,
    preemption_model,
)

DEFAULT_WORK = Path("/tmp/capture-work")
DEFAULT_KERNEL_PACKAGE = "linux-image-6.12.117+deb12-arm64-unsigned"
BUSYBOX_PACKAGE = "busybox-static"
PERCPU_EVENTS = (
    "percpu:percpu_alloc_percpu",
    "percpu:percpu_free_percpu",
    "percpu:percpu_alloc_percpu_fail",
    "percpu:percpu_create_chunk",
    "percpu:percpu_destroy_chunk",
)
BEGIN = "@@@percpu-explorer begin "
END = "@@@percpu-explorer end "
DONE = "@@@percpu-explorer done@@@"

# The files the init script prints: bundle source name -> shell command. The
# VMCOREINFO note sits in the first pages of /proc/kcore (its ELF notes follow the
# program headers); `strings` keeps its KEY=VALUE lines.
_INIT_SOURCES: dict[str, str] = {
    "uname": "uname -a",
    "cmdline": "cat /proc/cmdline",
    "cpuinfo": "cat /proc/cpuinfo",
    "vmcoreinfo": ("head -c 1048576 /proc/kcore | strings -n 6 | "
                   "grep -E '^(OSRELEASE|BUILD-ID|PAGESIZE|KERNELOFFSET|CRASHTIME|SYMBOL|"
                   "SIZE|OFFSET|LENGTH|NUMBER)'"),
    "vmallocinfo": "cat /proc/vmallocinfo",
    "ptdump": "cat /sys/kernel/debug/kernel_page_tables",
    "percpu_stats": "cat /sys/kernel/debug/percpu_stats",
    "meminfo": "cat /proc/meminfo",
    "trace": "cat /sys/kernel/tracing/trace",
    "dmesg": "dmesg",
}


class CaptureError(RuntimeError):
    """A step of the capture procedure failed; the message says which and why."""


class BootFailed(CaptureError):
    """The guest did not reach the end of the init script: `console` is everything the
    serial console printed, `timed_out` whether QEMU was killed at the timeout (else it
    exited, e.g. after a panic with panic=1 and -no-reboot, or was stopped in an
    exception storm: `stopped`), `seconds` how long it ran; a watched boot (`Watch`)
    adds `exceptions` and `registers`."""

    def __init__(self, message: str, console: str, timed_out: bool, returncode: int | None,
                 seconds: float) -> None:
        super().__init__(message)
        self.console = console
        self.timed_out = timed_out
        self.returncode = returncode
        self.seconds = seconds
        self.stopped = "timeout" if timed_out else ""  # or "exception storm"
        self.exceptions = ""  # the first lines of QEMU's exception log (-d int)
        self.registers = ""   # the monitor's `info registers` of CPU 0 when stopped


@dataclass(frozen=True)
class QemuPlan:
    """One QEMU boot: CPU model, CPU count, memory, KASLR and the workload.

    cpu: QEMU `-cpu` ("max" has LPA2, so a 52-bit 4K kernel runs with 52 bits;
        "cortex-a72" has no LPA2, so the same kernel falls back to 48 bits).
    cgroups: how many memory cgroups the workload creates and then removes (0: none).
    workers: shells that share the cgroups between them and run at once (the guest's
        scheduler spreads them over its CPUs); with more than one, allocations of
        several CPUs race, and the trace may list one before an allocation made first
        (the kernel records an allocation's event after it has let go of the allocator's
        locks).
    trace_buf_size: per-CPU ring buffer (kernel parameter trace_buf_size=).
    kernel_package: the Debian arm64 kernel package to fetch, unless `kernel_image`
        and `kernel_config` name a kernel built locally (e.g. Debian's source rebuilt
        with CONFIG_PTDUMP_DEBUGFS and CONFIG_PERCPU_STATS: see `make capture-ptdump`).
    rebuild: rebuild the package's kernel that way first (`rebuild_debian_kernel`).
    keep_failed: a boot that does not get through the init script (a panic, a hang)
        still gives a bundle (`failed_boot_bundle`); the command line then adds
        `earlycon` (the PL011 of the device tree's stdout-path, mapped through the fixmap,
        so the console works before the PL011 driver and before any ioremap()) and
        `loglevel=8`, so that the console shows every kernel message up to the failure
        (the console prints levels below its loglevel: 8 lets KERN_DEBUG through, which
        the first chunk's `pcpu-alloc:` lines use);
        a boot stopped at the timeout keeps the monitor's `info registers` of CPU 0.
    log_exceptions: with keep_failed, QEMU logs every exception the guest takes and the
        boot stops once the log passes STORM_BYTES (a kernel faulting before its
        exception vectors exist); the bundle keeps the log's first lines.
    """

    cpu: str = "max"
    smp: int = 4
    memory_mb: int = 2048
    kaslr: bool = True
    cgroups: int = 200
    workers: int = 1
    trace_buf_size: str = "4M"
    timeout_s: int = 1500
    kernel_package: str = DEFAULT_KERNEL_PACKAGE
    kernel_image: Path | None = None
    kernel_config: Path | None = None
    rebuild: bool = False
    extra_append: tuple[str, ...] = field(default_factory=tuple)
    keep_failed: bool = False
    log_exceptions: bool = False

    def append(self) -> str:
        """The kernel command line. `panic=1` makes a panicking kernel reboot after a
        second, which QEMU's -no-reboot turns into an exit: a boot that panics ends at
        once instead of at the timeout."""
        words = [
            "console=ttyAMA0", "quiet", "log_buf_len=8M", "no_hash_pointers", "panic=1",
            f"trace_buf_size={self.trace_buf_size}",
            "trace_event=" + ",".join(PERCPU_EVENTS),
            "rdinit=/init",
        ]
        if not self.kaslr:
            words.append("nokaslr")
        if self.keep_failed:
            words += ["earlycon", "loglevel=8"]  # after "quiet": the later one counts
        return " ".join([*words, *self.extra_append])


def init_script(cgroups: int, workers: int = 1) -> str:
    """The busybox `/init` of the capture initramfs: `workers` shells at once make and
    then remove every `workers`-th of the cgroups."""
    lines = [
        "#!/bin/busybox sh",
        "/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin",
        "/bin/busybox --install -s",
        "export PATH=/bin:/sbin:/usr/bin:/usr/sbin",
        "mkdir -p /proc /sys /dev /tmp",
        "mount -t proc proc /proc",
        "mount -t sysfs sysfs /sys",
        "mount -t devtmpfs devtmpfs /dev 2>/dev/null",
        "mount -t debugfs debugfs /sys/kernel/debug",
        "mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null",
        "dmesg -n 1",
        "T=/sys/kernel/tracing",
        'mark() { [ -w $T/trace_marker ] && echo "$1" > $T/trace_marker; }',
    ]
    shells = f" in {workers} shells at once" if workers > 1 else ""
    if cgroups:
        lines += [
            "mkdir -p /sys/fs/cgroup",
            "mount -t cgroup2 none /sys/fs/cgroup",
            'echo "+memory" > /sys/fs/cgroup/cgroup.subtree_control',
            f"mark 'workload: mkdir {cgroups} memory cgroups{shells}'",
            *_shared("mkdir", cgroups, workers),
            f"mark 'workload: rmdir {cgroups} memory cgroups{shells}'",
            *_shared("rmdir", cgroups, workers),
            "sleep 5",
            "mark 'workload: done'",
        ]
    lines.append("echo 0 > $T/tracing_on 2>/dev/null")
    for name, command in _INIT_SOURCES.items():
        lines.append(f"echo '{BEGIN}{name}@@@'")
        lines.append(f"{command}; echo \"{END}{name} rc=$?@@@\"")
    lines += [f"echo '{DONE}'", "sync", "poweroff -f", ""]
    return "\n".join(lines)


def _shared(command: str, cgroups: int, workers: int) -> list[str]:
    """`command` (mkdir, rmdir) on cgroups pe1..peN: in one shell, or in `workers` shells
    at once, shell w taking w, w + workers, ..."""
    if workers <= 1:
        return [f"for i in $(seq 1 {cgroups}); do {command} /sys/fs/cgroup/pe$i; done"]
    return [f"for w in $(seq 1 {workers}); do "
            f"( for i in $(seq $w {workers} {cgroups}); do {command} /sys/fs/cgroup/pe$i; "
            "done ) & done; wait"]


# --- initramfs -------------------------------------------------------------------------

def _cpio_entry(name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0),
                ino: int = 1) -> bytes:
    """One "newc" cpio record (the format the kernel unpacks initramfs from)."""
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
    header = b"070701" + b"".join(f"{v:08x}".encode() for v in fields)
    record = header + name.encode() + b"\0"
    record += b"\0" * (-len(record) % 4)
    record += data + b"\0" * (-len(data) % 4)
    return record


def build_initramfs(busybox: Path, init_text: str, out: Path,
                    programs: dict[str, bytes] | None = None) -> Path:
    """Write a gzip'd newc cpio with /init, /bin/busybox and /dev/console, plus
    `programs` (name -> executable bytes) in /bin."""
    entries = [
        ("bin", 0o040755, b"", (0, 0)),
        ("dev", 0o040755, b"", (0, 0)),
        ("dev/console", 0o020600, b"", (5, 1)),
        ("proc", 0o040755, b"", (0, 0)),
        ("sys", 0o040755, b"", (0, 0)),
        ("bin/busybox", 0o100755, busybox.read_bytes(), (0, 0)),
        ("init", 0o100755, init_text.encode(), (0, 0)),
        *((f"bin/{name}", 0o100755, data, (0, 0)) for name, data in (programs or {}).items()),
    ]
    blob = b"".join(_cpio_entry(n, m, d, r, i + 1) for i, (n, m, d, r) in enumerate(entries))
    blob += _cpio_entry("TRAILER!!!", 0, ino=0)
    blob += b"\0" * (-len(blob) % 512)
    out.write_bytes(gzip.compress(blob, mtime=0))
    return out


# --- packages --------------------------------------------------------------------------

def _run(cmd: list[str], what: str, cwd: Path | None = None, timeout: int = 600) -> str:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise CaptureError(f"{what}: {cmd[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise CaptureError(f"{what}: `{shlex.join(cmd)}` did not finish in {timeout}s") from None
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise CaptureError(f"{what}: `{shlex.join(cmd)}` failed: {' / '.join(tail)}")
    return done.stdout


def fetch_package(name: str, work: Path, arch: str = "arm64") -> Path:
    """`apt-get download NAME:arm64` into `work` and unpack it; returns the folder.
    arch="all" fetches an architecture-independent package (`linux-source-6.12`)."""
    work.mkdir(parents=True, exist_ok=True)
    target = work / f"pkg-{name}"
    if target.is_dir() and any(target.iterdir()):
        return target
    debs = sorted(work.glob(f"{name}_*_{arch}.deb"))
    if not debs and arch == "all":
        _run(["apt-get", "download", "-q", name], f"downloading {name}", cwd=work)
        debs = sorted(work.glob(f"{name}_*_all.deb"))
    if not debs:
        arch = _run(["dpkg", "--print-foreign-architectures"], "checking dpkg architectures")
        if "arm64" not in arch.split():
            raise CaptureError(
                f"package {name}:arm64 cannot be fetched: arm64 is not a dpkg architecture here; "
                "run `dpkg --add-architecture arm64 && apt-get update` (as root)")
        try:
            _run(["apt-get", "download", "-q", f"{name}:arm64"], f"downloading {name}",
                 cwd=work)
        except CaptureError as exc:
            raise CaptureError(
                f"{exc}. Is the package name right? `apt-cache search linux-image | grep arm64` "
                "lists the kernels (after `apt-get update`)") from None
        debs = sorted(work.glob(f"{name}_*_arm64.deb"))
        if not debs:
            raise CaptureError(f"apt-get download {name}:arm64 left no .deb in {work}")
    target.mkdir(exist_ok=True)
    _run(["dpkg-deb", "-x", str(debs[-1]), str(target)], f"unpacking {debs[-1].name}")
    return target


def find_kernel(unpacked: Path) -> tuple[Path, Path]:
    """The kernel image and its config file inside an unpacked linux-image package."""
    images = sorted((unpacked / "boot").glob("vmlinuz-*"))
    configs = sorted((unpacked / "boot").glob("config-*"))
    if not images or not configs:
        raise CaptureError(f"no boot/vmlinuz-* and boot/config-* in {unpacked}")
    return images[-1], configs[-1]


# --- boot ------------------------------------------------------------------------------

def qemu_command(plan: QemuPlan, kernel: Path, initrd: Path) -> list[str]:
    """The qemu-system-aarch64 command line (serial console on stdout)."""
    cpu = plan.cpu
    if cpu == "max":
        cpu = "max,pauth-impdef=on"  # QEMU's cheap pointer-auth algorithm: faster under TCG
    return [
        "qemu-system-aarch64", "-M", "virt", "-cpu", cpu, "-smp", str(plan.smp),
        "-m", str(plan.memory_mb), "-accel", "tcg,thread=multi",
        "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
        "-kernel", str(kernel), "-initrd", str(initrd), "-append", plan.append(),
    ]


# A boot watched for faults (`Watch`): QEMU logs every exception the guest takes (-d int);
# a kernel that faults before it has exception vectors faults again at once, forever, and
# the log passes STORM_BYTES within a second or two. A healthy boot takes longer to log as
# much (its timer interrupts and system calls), so `log_exceptions` is for kernels
# expected to fail.
STORM_BYTES = 1 << 20
EXCEPTION_LINES = 80  # of the log, kept as the bundle's `exceptions` text


@dataclass(frozen=True)
class Watch:
    """Where a watched boot's QEMU writes its exception log (None: no log) and its
    monitor socket (None: no monitor)."""

    exceptions: Path | None = None
    monitor: Path | None = None

    def args(self) -> list[str]:
        """QEMU options for the log and the monitor (in place of -monitor none)."""
        out: list[str] = []
        if self.exceptions is not None:
            out += ["-d", "int,guest_errors", "-D", str(self.exceptions)]
        if self.monitor is not None:
            out += ["-monitor", f"unix:{self.monitor},server,nowait"]
        return out


def watched_command(command: list[str], watch: Watch | None,
                    placeholders: bool = False) -> list[str]:
    """`command` with `watch`'s log and monitor options in place of -monitor none; with
    `placeholders`, their paths written as <exception log> and <monitor socket> (a
    bundle's meta names no path of the machine that made it)."""
    if watch is None or not watch.args():
        return list(command)
    kept = [a for i, a in enumerate(command)
            if not (a == "-monitor" or (i and command[i - 1] == "-monitor"))]
    if placeholders:
        watch = Watch(Path("<exception log>") if watch.exceptions else None,
                      Path("<monitor socket>") if watch.monitor else None)
    return kept + watch.args()


def _monitor(path: Path, commands: list[str]) -> str:
    """Ask QEMU's human monitor `commands` in turn; their answers as one text."""
    out = b""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(2)
        sock.connect(str(path))
        for command in ["", *commands]:
            sock.sendall(command.encode() + b"\n")
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    break
                if not data:
                    break
                out += data
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out.decode("utf-8", "replace"))
    return "\n".join(line for line in text.replace("\r", "").splitlines()
                     if line.strip() and not line.startswith("(qemu)")) + "\n"


def boot(command: list[str], timeout_s: int, log: Path | None = None,
         watch: Watch | None = None) -> str:
    """Run QEMU until the guest powers off; returns the serial console text. A boot that
    does not get through the init script raises BootFailed with the console text; with
    `watch`, also the first lines of QEMU's exception log and, for a boot stopped at the
    timeout or in an exception storm, the monitor's `info registers` of CPU 0."""
    if shutil.which(command[0]) is None:
        raise CaptureError(f"{command[0]} is not installed: apt-get install qemu-system-arm")
    watch = watch or Watch()
    if watch.args():
        command = watched_command(command, watch)
        for path in (watch.exceptions, watch.monitor):
            if path is not None:
                path.unlink(missing_ok=True)
    out = open(log, "wb") if log else subprocess.PIPE
    started = time.monotonic()
    stopped = ""  # why QEMU was stopped: "timeout", "exception storm"
    registers = ""
    data = b""
    try:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        while True:
            try:
                data, _ = proc.communicate(timeout=1)
                break
            except subprocess.TimeoutExpired:
                pass
            storm = (watch.exceptions is not None and watch.exceptions.is_file()
                     and watch.exceptions.stat().st_size > STORM_BYTES)
            if storm or time.monotonic() - started > timeout_s:
                stopped = "exception storm" if storm else "timeout"
                if watch.monitor is not None:
                    try:
                        registers = _monitor(watch.monitor, ["cpu 0", "info registers"])
                    except OSError:
                        registers = ""
                proc.kill()
                data, _ = proc.communicate()
                break
    finally:
        if log:
            out.close()  # type: ignore[union-attr]
    raw = log.read_bytes() if log else (data or b"")
    text = raw.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "")
    seconds = time.monotonic() - started
    exceptions = ""
    if watch.exceptions is not None and watch.exceptions.is_file():
        with open(watch.exceptions, "rb") as f:
            head = f.read(64 * 1024).decode("utf-8", "replace").splitlines()
        exceptions = "\n".join(head[:EXCEPTION_LINES]) + "\n" if head else ""
        watch.exceptions.unlink()  # an exception storm writes gigabytes
    if stopped or DONE not in text:
        if stopped == "timeout":
            why = f"the guest did not power off within {timeout_s}s"
        elif stopped:
            why = (f"the guest faulted in a loop (QEMU's exception log passed "
                   f"{STORM_BYTES} bytes after {seconds:.0f}s)")
        else:
            why = f"the boot did not finish (QEMU exit {proc.returncode})"
        tail = "\n".join(text.splitlines()[-15:])
        failure = BootFailed(f"{why}; last console lines:\n{tail}", text, stopped == "timeout",
                             None if stopped else proc.returncode, seconds)
        failure.stopped = stopped
        failure.exceptions = exceptions
        failure.registers = registers
        raise failure
    return text


def split_console(text: str) -> dict[str, str]:
    """The init script's sections: name -> text, only those whose command succeeded."""
    texts: dict[str, str] = {}
    pattern = re.compile(re.escape(BEGIN) + r"(\w+)@@@\n(.*?)" + re.escape(END)
                         + r"\1 rc=(\d+)@@@", re.S)
    for match in pattern.finditer(text):
        name, body, rc = match.group(1), match.group(2), int(match.group(3))
        if rc == 0 and body.strip():
            texts[name] = body
    return texts


def capture_qemu(plan: QemuPlan, work: Path = DEFAULT_WORK,
                 progress: object = print) -> CaptureBundle:
    """Fetch, build, boot and split: the whole QEMU capture (see the module docstring)."""
    say = progress if callable(progress) else (lambda _msg: None)
    work.mkdir(parents=True, exist_ok=True)
    if plan.kernel_image is not None:
        if plan.kernel_config is None or not plan.kernel_config.is_file():
            raise CaptureError(f"a local kernel image needs its .config file "
                               f"(got {plan.kernel_config})")
        if not plan.kernel_image.is_file():
            raise CaptureError(f"kernel image {plan.kernel_image} does not exist")
        image, config_file = plan.kernel_image, plan.kernel_config
        say(f"fetching {BUSYBOX_PACKAGE}:arm64 into {work}")
    else:
        say(f"fetching {plan.kernel_package}:arm64 and {BUSYBOX_PACKAGE}:arm64 into {work}")
        image, config_file = find_kernel(fetch_package(plan.kernel_package, work))
        if plan.rebuild:
            image, config_file = rebuild_debian_kernel(config_file, work, progress=say)
    busybox = fetch_package(BUSYBOX_PACKAGE, work) / "bin" / "busybox"
    initrd = build_initramfs(busybox, init_script(plan.cgroups, plan.workers),
                             work / "initramfs.cpio.gz")
    command = qemu_command(plan, image, initrd)
    say(f"booting (TCG emulation, up to {plan.timeout_s}s): {shlex.join(command)}")
    started = time.monotonic()
    try:
        watch = (Watch(work / "qemu-exceptions.log" if plan.log_exceptions else None,
                       work / "qemu-monitor.sock") if plan.keep_failed else None)
        console = boot(command, plan.timeout_s, work / f"console-{plan.cpu}-{plan.smp}.log",
                       watch)
    except BootFailed as exc:
        if not plan.keep_failed:
            raise
        say(f"the boot failed after {exc.seconds:.0f}s; keeping its console as evidence")
        # the meta's command as it ran: with the exception log and the monitor
        ran = watched_command(command, watch, placeholders=True)
        return failed_boot_bundle(exc, _qemu_meta(plan, config_file, ran, image, initrd))
    say(f"guest powered off after {time.monotonic() - started:.0f}s")
    texts = split_console(console)
    online = re.search(r"SMP: Total of (\d+) processors activated", texts.get("dmesg", ""))
    if online is None or int(online.group(1)) != plan.smp:
        raise CaptureError(
            f"the guest brought up {online.group(1) if online else 'an unknown number of'} of "
            f"{plan.smp} CPUs (see the kernel log in {work}); a smaller trace_buf_size or more "
            "memory helps when the trace ring buffer could not be allocated")
    release = texts.get("uname", "").split()[2] if len(texts.get("uname", "").split()) > 2 else ""
    meta = _qemu_meta(plan, config_file, command, image, initrd, release)
    meta.update(cpus_online=int(online.group(1)), absent=sorted(set(SOURCES) - set(texts)))
    return CaptureBundle(meta=meta, texts=texts)


def _qemu_meta(plan: QemuPlan, config_file: Path, command: list[str], image: Path,
               initrd: Path, release: str = "") -> dict[str, object]:
    """The meta facts of a QEMU boot: the kernel, its config facts, the QEMU command."""
    meta_config = config_facts(config_file.read_text())
    return {
        "source": "qemu",
        "kernel_package": plan.kernel_package,
        "kernel_build": (f"{SOURCE_PACKAGE} rebuilt (Image only, no debug info, "
                         "LOCALVERSION +deb12-arm64-ptdump) with the package config + "
                         + ", ".join(f"CONFIG_{o}" for o in REBUILD_OPTIONS)
                         if plan.rebuild or plan.kernel_image is not None else None),
        "kernel_release": release,
        "kernel_version": kernel_version_from_release(release) if release else None,
        "config": meta_config,
        "qemu_command": [("<kernel>" if a == str(image) else "<initrd>" if a == str(initrd)
                          else a) for a in command],
        "qemu_version": _run(["qemu-system-aarch64", "--version"], "qemu version")
        .splitlines()[0],
        "cpu": plan.cpu,
        "smp": plan.smp,
        "memory_mb": plan.memory_mb,
        "preemption": preemption_model(meta_config),
        "kaslr": plan.kaslr,
        "workload": (f"mkdir+rmdir {plan.cgroups} memory cgroups"
                     + (f" in {plan.workers} shells at once" if plan.workers > 1 else "")
                     if plan.cgroups else "none"),
    }


# The console lines that say how a boot failed, most telling first.
_FAILURE_LINES = (
    ("panic", re.compile(r"Kernel panic - not syncing: .*")),
    ("oops", re.compile(r"(Unable to handle kernel .*|Internal error: .*)")),
    ("bug", re.compile(r"(kernel BUG at .*|BUG: .*)")),
    ("warning", re.compile(r"WARNING: CPU: .*")),
)
_LINUX_VERSION = re.compile(r"Linux version (\S+)")
_CONSOLE_TIME = re.compile(r"^\[\s*(\d+\.\d+)\]")


def boot_failure_facts(console: str) -> dict[str, object]:
    """How a boot failed, read from its console: `how` (panic, oops, bug, warning or
    hang), the first line of each kind with its console time, the kernel release of the
    "Linux version" banner and how many CPUs came up."""
    lines = console.splitlines()
    facts: dict[str, object] = {"how": "hang"}
    for kind, pattern in reversed(_FAILURE_LINES):
        for line in lines:
            found = pattern.search(line)
            if found:
                stamp = _CONSOLE_TIME.match(line)
                facts[kind] = found.group(0).strip()
                facts[f"{kind}_seconds"] = float(stamp.group(1)) if stamp else None
                facts["how"] = kind
                break
    banner = _LINUX_VERSION.search(console)
    facts["kernel_release"] = banner.group(1) if banner else ""
    online = re.search(r"SMP: Total of (\d+) processors activated", console)
    facts["cpus_online"] = int(online.group(1)) if online else None
    facts["reached_init"] = BEGIN in console
    return facts


_ABORT = re.compile(r"Taking exception (\d+) \[([^\]]+)\] on CPU (\d+)\n"
                    r"\.\.\.from (EL\d) to (EL\d)\n\.\.\.with ESR (\S+)\n"
                    r"\.\.\.with FAR (0x[0-9a-f]+)\n\.\.\.with ELR (0x[0-9a-f]+)\n"
                    r"\.\.\.to EL\d PC (0x[0-9a-f]+)")
_REGISTER = re.compile(r"\b(PC|X\d\d|SP_EL\d|PSTATE)=([0-9a-f]+)")


def exception_facts(exceptions: str, registers: str = "") -> dict[str, object]:
    """The first abort in QEMU's exception log (kind, ESR, FAR, ELR and where it went)
    and CPU 0's registers from the monitor (PC, X00..X30 as integers)."""
    facts: dict[str, object] = {}
    first = _ABORT.search(exceptions)
    if first:
        facts["first_abort"] = {
            "exception": first.group(2), "cpu": int(first.group(3)),
            "esr": first.group(6), "far": int(first.group(7), 16),
            "elr": int(first.group(8), 16), "vector": int(first.group(9), 16)}
        facts["aborts_logged"] = len(_ABORT.findall(exceptions))
    if registers:
        facts["registers"] = {name: int(value, 16)
                              for name, value in _REGISTER.findall(registers)}
    return facts


def failed_boot_bundle(failure: BootFailed, meta: dict[str, object]) -> CaptureBundle:
    """The evidence of a boot that failed: `meta` with `boot_failed` and `boot_failure`
    (`boot_failure_facts` of the console, whether QEMU exited, timed out or was stopped
    in an exception storm, and `exception_facts`), and the texts: `dmesg`, the serial
    console (the kernel's messages up to the failure); `exceptions`, the first lines of
    QEMU's exception log, and `registers`, the monitor's registers, when there are."""
    facts = boot_failure_facts(failure.console)
    facts.update(qemu_exit=failure.returncode, timed_out=failure.timed_out,
                 stopped=failure.stopped or None, seconds=round(failure.seconds),
                 **exception_facts(failure.exceptions, failure.registers))
    if facts["how"] == "hang" and failure.stopped == "exception storm":
        facts["how"] = "exception loop"
    release = str(facts.pop("kernel_release"))
    meta = dict(meta, kernel_release=release,
                kernel_version=kernel_version_from_release(release) if release else None,
                cpus_online=facts["cpus_online"], boot_failed=True, boot_failure=facts,
                absent=sorted(set(SOURCES) - {"dmesg"}))
    texts = {"dmesg": failure.console, "exceptions": failure.exceptions,
             "registers": failure.registers}
    return CaptureBundle(meta=meta, texts={k: v for k, v in texts.items() if v or k == "dmesg"})


# --- the running machine ---------------------------------------------------------------

_LOCAL_FILES = {
    "cmdline": "/proc/cmdline",
    "cpuinfo": "/proc/cpuinfo",
    "vmallocinfo": "/proc/vmallocinfo",
    "ptdump": "/sys/kernel/debug/kernel_page_tables",
    "percpu_stats": "/sys/kernel/debug/percpu_stats",
    "meminfo": "/proc/meminfo",
    "trace": "/sys/kernel/tracing/trace",
}


def _read_kcore_notes(limit: int = 1 << 18) -> str:
    with open("/proc/kcore", "rb") as f:
        head = f.read(limit)
    words = re.findall(rb"[\x20-\x7e]{6,}", head)
    keep = re.compile(rb"^(OSRELEASE|BUILD-ID|PAGESIZE|KERNELOFFSET|CRASHTIME|SYMBOL|SIZE|"
                      rb"OFFSET|LENGTH|NUMBER)")
    return "".join(w.decode() + "\n" for w in words if keep.match(w))


def capture_local(progress: object = print) -> CaptureBundle:
    """Read the capture files of the running machine (arm64, as root); absent ones are
    skipped and listed in `meta["absent"]` with the reason."""
    say = progress if callable(progress) else (lambda _msg: None)
    if platform.machine() != "aarch64":
        raise CaptureError(f"--local reads an arm64 kernel; this machine is "
                           f"{platform.machine()} (use --qemu)")
    texts: dict[str, str] = {"uname": " ".join(os.uname()) + "\n"}
    reasons: dict[str, str] = {}
    for name, path in _LOCAL_FILES.items():
        try:
            texts[name] = Path(path).read_text(errors="replace")
        except OSError as exc:
            reasons[name] = f"{path}: {exc.strerror}"
    try:
        texts["vmcoreinfo"] = _read_kcore_notes()
    except OSError as exc:
        reasons["vmcoreinfo"] = f"/proc/kcore: {exc.strerror}"
    try:
        texts["dmesg"] = _run(["dmesg"], "reading the kernel log")
    except CaptureError as exc:
        reasons["dmesg"] = str(exc)
    for name, why in reasons.items():
        say(f"skipped {name}: {why}")
    release = os.uname().release
    config_text = ""
    for candidate in (Path(f"/boot/config-{release}"), Path("/proc/config.gz")):
        if candidate.is_file():
            data = candidate.read_bytes()
            config_text = (gzip.decompress(data) if candidate.suffix == ".gz" else data).decode()
            break
    else:
        say(f"no /boot/config-{release} or /proc/config.gz: the config facts are unknown")
    meta = {
        "source": "local",
        "kernel_release": release,
        "kernel_version": kernel_version_from_release(release),
        "config": config_facts(config_text),
        "preemption": preemption_model(config_facts(config_text)),
        "absent": sorted(set(SOURCES) - set(texts)),
        "absent_reasons": reasons,
    }
    return CaptureBundle(meta=meta, texts=texts)


# --- Debian's kernel rebuilt with ptdump and percpu_stats ------------------------------

SOURCE_PACKAGE = "linux-source-6.12"
REBUILD_OPTIONS = ("PTDUMP_DEBUGFS", "PERCPU_STATS")


def rebuild_debian_kernel(config_file: Path, work: Path = DEFAULT_WORK, jobs: int = 2,
                          timeout_s: int = 4 * 3600, progress: object = print,
                          ) -> tuple[Path, Path]:
    """Cross-compile Debian's kernel source (`linux-source-6.12`) with the package's
    config plus CONFIG_PTDUMP_DEBUGFS and CONFIG_PERCPU_STATS; returns (Image, .config).

    Needs Debian's gcc-aarch64-linux-gnu, flex, bison, bc, libssl-dev and libelf-dev.
    Only the Image is built (the modules are not needed to boot an initramfs), without
    debug info, under `nice -n 19`; LOCALVERSION is "+deb12-arm64-ptdump".
    """
    say = progress if callable(progress) else (lambda _msg: None)
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        raise CaptureError("aarch64-linux-gnu-gcc is not installed: apt-get install "
                           "gcc-aarch64-linux-gnu flex bison bc libssl-dev libelf-dev")
    source_pkg = fetch_package(SOURCE_PACKAGE, work, arch="all")
    tarballs = sorted((source_pkg / "usr" / "src").glob("linux-source-*.tar.xz"))
    if not tarballs:
        raise CaptureError(f"{SOURCE_PACKAGE} holds no usr/src/linux-source-*.tar.xz")
    tree = tarballs[-1].with_name(tarballs[-1].name.removesuffix(".tar.xz"))
    if not tree.is_dir():
        say(f"unpacking {tarballs[-1].name}")
        _run(["tar", "xJf", tarballs[-1].name], "unpacking the kernel source",
             cwd=tarballs[-1].parent, timeout=1800)
    image = tree / "arch" / "arm64" / "boot" / "Image"
    make = ["make", "ARCH=arm64", "CROSS_COMPILE=aarch64-linux-gnu-"]
    shutil.copy(config_file, tree / ".config")
    options = [f"--enable={o}" for o in REBUILD_OPTIONS]
    _run(["./scripts/config", *[w for o in REBUILD_OPTIONS for w in ("--enable", o)],
          "--set-str", "SYSTEM_TRUSTED_KEYS", "", "--set-str", "SYSTEM_REVOCATION_KEYS", "",
          "--disable", "DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT", "--disable", "DEBUG_INFO_DWARF5",
          "--disable", "DEBUG_INFO_DWARF4", "--enable", "DEBUG_INFO_NONE",
          "--disable", "DEBUG_INFO_BTF", "--set-str", "LOCALVERSION", "+deb12-arm64-ptdump",
          "--disable", "LOCALVERSION_AUTO"], f"configuring ({', '.join(options)})", cwd=tree)
    _run([*make, "olddefconfig"], "make olddefconfig", cwd=tree)
    config_text = (tree / ".config").read_text()
    for option in REBUILD_OPTIONS:
        if f"CONFIG_{option}=y" not in config_text:
            raise CaptureError(f"CONFIG_{option} did not stay enabled after olddefconfig")
    say(f"building {tree.name} Image with -j{jobs} under nice -n 19 (about half an hour)")
    _run(["nice", "-n", "19", *make, f"-j{jobs}", "Image"], "building the kernel", cwd=tree,
         timeout=timeout_s)
    return image, tree / ".config"
