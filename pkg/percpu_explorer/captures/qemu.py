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
4. Split the serial console into the raw texts and save a capture bundle.

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


@dataclass(frozen=True)
class QemuPlan:
    """One QEMU boot: CPU model, CPU count, memory, KASLR and the workload.

    cpu: QEMU `-cpu` ("max" has LPA2, so a 52-bit 4K kernel runs with 52 bits;
        "cortex-a72" has no LPA2, so the same kernel falls back to 48 bits).
    cgroups: how many memory cgroups the workload creates and then removes (0: none).
    trace_buf_size: per-CPU ring buffer (kernel parameter trace_buf_size=).
    kernel_package: the Debian arm64 kernel package to fetch, unless `kernel_image`
        and `kernel_config` name a kernel built locally (e.g. Debian's source rebuilt
        with CONFIG_PTDUMP_DEBUGFS and CONFIG_PERCPU_STATS: see `make capture-ptdump`).
    rebuild: rebuild the package's kernel that way first (`rebuild_debian_kernel`).
    """

    cpu: str = "max"
    smp: int = 4
    memory_mb: int = 2048
    kaslr: bool = True
    cgroups: int = 200
    trace_buf_size: str = "4M"
    timeout_s: int = 1500
    kernel_package: str = DEFAULT_KERNEL_PACKAGE
    kernel_image: Path | None = None
    kernel_config: Path | None = None
    rebuild: bool = False
    extra_append: tuple[str, ...] = field(default_factory=tuple)

    def append(self) -> str:
        """The kernel command line."""
        words = [
            "console=ttyAMA0", "quiet", "log_buf_len=8M", "no_hash_pointers",
            f"trace_buf_size={self.trace_buf_size}",
            "trace_event=" + ",".join(PERCPU_EVENTS),
            "rdinit=/init",
        ]
        if not self.kaslr:
            words.append("nokaslr")
        return " ".join([*words, *self.extra_append])


def init_script(cgroups: int) -> str:
    """The busybox `/init` of the capture initramfs."""
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
    if cgroups:
        lines += [
            "mkdir -p /sys/fs/cgroup",
            "mount -t cgroup2 none /sys/fs/cgroup",
            'echo "+memory" > /sys/fs/cgroup/cgroup.subtree_control',
            f"mark 'workload: mkdir {cgroups} memory cgroups'",
            f"for i in $(seq 1 {cgroups}); do mkdir /sys/fs/cgroup/pe$i; done",
            f"mark 'workload: rmdir {cgroups} memory cgroups'",
            f"for i in $(seq 1 {cgroups}); do rmdir /sys/fs/cgroup/pe$i; done",
            "sleep 5",
            "mark 'workload: done'",
        ]
    lines.append("echo 0 > $T/tracing_on 2>/dev/null")
    for name, command in _INIT_SOURCES.items():
        lines.append(f"echo '{BEGIN}{name}@@@'")
        lines.append(f"{command}; echo \"{END}{name} rc=$?@@@\"")
    lines += [f"echo '{DONE}'", "sync", "poweroff -f", ""]
    return "\n".join(lines)


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


def boot(command: list[str], timeout_s: int, log: Path | None = None) -> str:
    """Run QEMU until the guest powers off; returns the serial console text."""
    if shutil.which(command[0]) is None:
        raise CaptureError(f"{command[0]} is not installed: apt-get install qemu-system-arm")
    out = open(log, "wb") if log else subprocess.PIPE
    try:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            data, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise CaptureError(
                f"the guest did not power off within {timeout_s}s"
                + (f"; the console so far is in {log}" if log else "")) from None
    finally:
        if log:
            out.close()  # type: ignore[union-attr]
    raw = log.read_bytes() if log else data
    text = raw.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "")
    if DONE not in text:
        tail = "\n".join(text.splitlines()[-15:])
        raise CaptureError(f"the boot did not finish (QEMU exit {proc.returncode}); "
                           f"last console lines:\n{tail}")
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
    initrd = build_initramfs(busybox, init_script(plan.cgroups), work / "initramfs.cpio.gz")
    command = qemu_command(plan, image, initrd)
    say(f"booting (TCG emulation, up to {plan.timeout_s}s): {shlex.join(command)}")
    started = time.monotonic()
    console = boot(command, plan.timeout_s, work / f"console-{plan.cpu}-{plan.smp}.log")
    say(f"guest powered off after {time.monotonic() - started:.0f}s")
    texts = split_console(console)
    online = re.search(r"SMP: Total of (\d+) processors activated", texts.get("dmesg", ""))
    if online is None or int(online.group(1)) != plan.smp:
        raise CaptureError(
            f"the guest brought up {online.group(1) if online else 'an unknown number of'} of "
            f"{plan.smp} CPUs (see the kernel log in {work}); a smaller trace_buf_size or more "
            "memory helps when the trace ring buffer could not be allocated")
    release = texts.get("uname", "").split()[2] if len(texts.get("uname", "").split()) > 2 else ""
    meta_config = config_facts(config_file.read_text())
    meta = {
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
        "cpus_online": int(online.group(1)),
        "preemption": preemption_model(meta_config),
        "kaslr": plan.kaslr,
        "workload": f"mkdir+rmdir {plan.cgroups} memory cgroups" if plan.cgroups else "none",
        "absent": sorted(set(SOURCES) - set(texts)),
    }
    return CaptureBundle(meta=meta, texts=texts)


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
