"""Build arm64 kernel variants from Debian's `linux-source-6.12` with a trimmed config.

A *variant* is a page size, a CONFIG_ARM64_VA_BITS and whether RFC patch 02/11
(`data/patches/`) is applied. Its config starts from the config file of Debian's
arm64 kernel package and is trimmed to what a capture needs (about 2200 objects; a
build took 24 to 32 minutes at -j4 on two cores shared with other work):

* every `=m` option is dropped and CONFIG_MODULES is off (the capture boots an
  initramfs; nothing is loaded);
* DRM, sound, wireless and networking are off, and so are debug info and BTF, and
  every SoC family of arch/arm64/Kconfig.platforms (QEMU's virt machine needs none);
* CONFIG_PTDUMP_DEBUGFS and CONFIG_PERCPU_STATS are on;
* the page size and VA_BITS choices are the variant's.

Every option the layout depends on (KVM, KPTI, GHES, SDEI, RELOCATABLE, RANDOMIZE_BASE,
NR_CPUS) is left as Debian sets it and checked after `make olddefconfig`; so is what the
capture's init needs (PL011 console, devtmpfs, debugfs, tracefs and the percpu trace
events, memory cgroups, a gzip initramfs, /proc/kcore). `config_differences()` lists
every difference from Debian's config that is not a dropped module, for the bundle's
meta.

Each variant builds in its own output folder (`make O=`), the patched ones from a
hard-linked copy of the tree with the patch applied, under `nice -n 19` in a process
group of its own. ccache is used when installed (the trees share a base folder, so an
object whose preprocessed text is the same in two builds compiles once; across page
sizes few are, since most objects see page-table constants).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..kernel import PAGE_SIZE_NAMES, va_bits_choices
from ..paths import DATA_DIR
from .bundle import CaptureBundle, kernel_version_from_release
from .qemu import (
    DEFAULT_WORK,
    SOURCE_PACKAGE,
    CaptureError,
    QemuPlan,
    _run,
    capture_qemu,
    fetch_package,
    find_kernel,
)

PAGE_SIZES = tuple(PAGE_SIZE_NAMES.values())  # "4K", "16K", "64K"
SOURCE_KERNEL = "6.12"                        # linux-source-6.12
DISABLE = ("MODULES", "DRM", "SOUND", "WIRELESS", "WLAN", "CFG80211", "MAC80211", "NET",
           "DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT", "DEBUG_INFO_DWARF4", "DEBUG_INFO_DWARF5",
           "DEBUG_INFO_BTF", "DEBUG_INFO_BTF_MODULES")
ENABLE = ("PTDUMP_DEBUGFS", "PERCPU_STATS", "DEBUG_INFO_NONE")
# Left as Debian sets them and checked after olddefconfig (the layout depends on them).
KEEP = ("KVM", "UNMAP_KERNEL_AT_EL0", "ACPI_APEI_GHES", "ARM_SDE_INTERFACE", "RELOCATABLE",
        "RANDOMIZE_BASE", "NR_CPUS")
# What the capture's init and parsers need built in.
NEEDED = ("SERIAL_AMBA_PL011", "SERIAL_AMBA_PL011_CONSOLE", "DEVTMPFS", "DEBUG_FS",
          "TRACING", "EVENT_TRACING", "TRACEPOINTS", "CGROUPS", "MEMCG", "BLK_DEV_INITRD",
          "RD_GZIP", "PROC_KCORE", "VMCORE_INFO", "PTDUMP_DEBUGFS", "PERCPU_STATS")
# The release names the source and the variant: 6.12.117+deb12-arm64-16k-47.
LOCALVERSION = "+deb12-arm64-"


@dataclass(frozen=True)
class Variant:
    """One kernel to build: `page_size` ("4K", "16K", "64K"), `va_bits` and `patched`."""

    page_size: str
    va_bits: int
    patched: bool = False

    def __post_init__(self) -> None:
        if self.page_size not in PAGE_SIZES:
            raise ValueError(f"page size {self.page_size!r}: valid are {', '.join(PAGE_SIZES)}")
        choices = va_bits_choices(self.page_bytes, SOURCE_KERNEL)  # arch/arm64/Kconfig
        if self.va_bits not in choices:
            valid = ", ".join(map(str, choices))
            raise ValueError(f"VA_BITS {self.va_bits} with {self.page_size} pages: valid are "
                             f"{valid}")

    @property
    def page_bytes(self) -> int:
        """PAGE_SIZE in bytes (4096, 16384 or 65536)."""
        return next(b for b, n in PAGE_SIZE_NAMES.items() if n == self.page_size)

    @property
    def name(self) -> str:
        """e.g. "16k-47" or "4k-48-patched"."""
        return f"{self.page_size.lower()}-{self.va_bits}" + ("-patched" if self.patched else "")

    def settings(self) -> dict[str, str]:
        """The CONFIG_ values (without the prefix) that pick this variant's granule and VA."""
        values = {f"ARM64_{size}_PAGES": "y" if size == self.page_size else "n"
                  for size in PAGE_SIZES}
        values.update({f"ARM64_VA_BITS_{bits}": "y" if bits == self.va_bits else "n"
                       for bits in (36, 39, 42, 47, 48, 52)})
        return values


def parse_variant(text: str, patched: bool = False) -> Variant:
    """`16k-47`, `64K/52`, `4k-48-patched` -> Variant; ValueError naming what is valid."""
    match = re.fullmatch(r"(4|16|64)[kK][-/](\d+)(-patched)?", text.strip())
    if not match:
        raise ValueError(f"variant {text!r}: write PAGESIZE-VABITS, e.g. 16k-47, 64k-52, "
                         "4k-48 (add -patched or --patched for patch 02/11)")
    return Variant(f"{match.group(1)}K", int(match.group(2)), patched or bool(match.group(3)))


# --- config ----------------------------------------------------------------------------

_LINE = re.compile(r"^(?:(CONFIG_\w+)=(.*)|# (CONFIG_\w+) is not set)$")


def parse_config(text: str) -> dict[str, str]:
    """A .config text -> {NAME: value}, "n" for "is not set" (names without CONFIG_)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            if match.group(1):
                values[match.group(1).removeprefix("CONFIG_")] = match.group(2)
            else:
                values[match.group(3).removeprefix("CONFIG_")] = "n"
    return values


def platforms(tree: Path) -> tuple[str, ...]:
    """The SoC families of arch/arm64/Kconfig.platforms (ARCH_*): QEMU's virt machine
    needs none of them, and their drivers are most of what Debian builds in."""
    text = (tree / "arch" / "arm64" / "Kconfig.platforms").read_text()
    return tuple(re.findall(r"^config (ARCH_\w+)", text, re.M))


def trimmed_config(debian_text: str, variant: Variant,
                   extra_disable: tuple[str, ...] = ()) -> str:
    """Debian's config with every module dropped, DISABLE and `extra_disable` off,
    ENABLE on and the variant's settings applied (the text `make olddefconfig` then
    completes)."""
    settings = {name: "n" for name in (*DISABLE, *extra_disable)}
    settings.update({name: "y" for name in ENABLE})
    settings.update(variant.settings())
    out: list[str] = []
    for line in debian_text.splitlines():
        match = _LINE.match(line)
        name = (match.group(1) or match.group(3)).removeprefix("CONFIG_") if match else None
        if name is None:
            out.append(line)
        elif name in settings:
            continue
        elif match and match.group(2) == "m":
            out.append(f"# CONFIG_{name} is not set")
        elif name in ("SYSTEM_TRUSTED_KEYS", "SYSTEM_REVOCATION_KEYS"):
            out.append(f'CONFIG_{name}=""')
        elif name in ("LOCALVERSION",):
            out.append(f'CONFIG_{name}="{LOCALVERSION}{variant.name}"')
        elif name == "LOCALVERSION_AUTO":
            out.append(f"# CONFIG_{name} is not set")
        else:
            out.append(line)
    for name, value in settings.items():
        out.append(f"# CONFIG_{name} is not set" if value == "n" else f"CONFIG_{name}={value}")
    return "\n".join(out) + "\n"


def config_differences(debian_text: str, built_text: str) -> dict[str, object]:
    """Every difference between Debian's config and the built one: the `=m` options
    that vanish with CONFIG_MODULES are counted (`modules_dropped`); `vanished` names the
    options Debian sets that no longer exist in ours (they depend on something dropped);
    `changed` maps every other difference NAME -> [Debian's value, ours] ("n" for not
    set, null for absent)."""
    debian, built = parse_config(debian_text), parse_config(built_text)
    dropped = {n for n, v in debian.items() if v == "m" and built.get(n, "n") == "n"}
    vanished: list[str] = []
    changed: dict[str, list[str | None]] = {}
    for name in sorted(set(debian) | set(built)):
        before, after = debian.get(name), built.get(name)
        if name in dropped or before == after:
            continue
        if (before in (None, "n")) and (after in (None, "n")):
            continue
        if after is None:
            vanished.append(name)
        else:
            changed[name] = [before, after]
    return {"modules_dropped": len(dropped), "vanished": vanished, "changed": changed}


def check_config(debian_text: str, built_text: str, variant: Variant) -> list[str]:
    """What is wrong with a built config: a KEEP option Debian set differently, a NEEDED
    option not built in, or the variant's granule/VA not selected. Empty when good."""
    debian, built = parse_config(debian_text), parse_config(built_text)
    wrong = [f"CONFIG_{n} is {built.get(n)!r}, Debian's is {debian.get(n)!r}"
             for n in KEEP if built.get(n) != debian.get(n)]
    wrong += [f"CONFIG_{n} is {built.get(n)!r}, the capture needs y"
              for n in NEEDED if built.get(n) != "y"]
    wrong += [f"CONFIG_{n} is {built.get(n)!r}, the variant needs {v}"
              for n, v in variant.settings().items() if built.get(n, "n") != v]
    if built.get("ARM64_VA_BITS") != str(variant.va_bits):
        wrong.append(f"CONFIG_ARM64_VA_BITS is {built.get('ARM64_VA_BITS')!r}")
    return wrong


# --- source trees ----------------------------------------------------------------------

def source_tree(work: Path = DEFAULT_WORK, progress: object = print) -> Path:
    """Debian's linux-source-6.12 unpacked under `work/src` (downloaded if absent)."""
    say = progress if callable(progress) else (lambda _msg: None)
    root = work / "src"
    tree = root / "usr" / "src" / "linux-source-6.12"
    if (tree / "Makefile").is_file():
        return tree
    work.mkdir(parents=True, exist_ok=True)
    debs = sorted(work.glob(f"{SOURCE_PACKAGE}_*_all.deb"))
    if not debs:
        say(f"downloading {SOURCE_PACKAGE}")
        _run(["apt-get", "download", "-q", SOURCE_PACKAGE], f"downloading {SOURCE_PACKAGE}",
             cwd=work)
        debs = sorted(work.glob(f"{SOURCE_PACKAGE}_*_all.deb"))
        if not debs:
            raise CaptureError(f"apt-get download {SOURCE_PACKAGE} left no .deb in {work}")
    root.mkdir(exist_ok=True)
    _run(["dpkg-deb", "-x", str(debs[-1]), str(root)], f"unpacking {debs[-1].name}")
    say(f"unpacking {tree.name}.tar.xz")
    _run(["tar", "xJf", f"{tree.name}.tar.xz"], "unpacking the kernel source", cwd=tree.parent,
         timeout=1800)
    return tree


def patched_tree(tree: Path, patch: Path, progress: object = print) -> Path:
    """A hard-linked copy of `tree` with `patch` applied (`patch` breaks the links of
    the files it edits); reused when it exists and the patch has not changed."""
    say = progress if callable(progress) else (lambda _msg: None)
    out = tree.with_name(tree.name + "-patched")
    stamp = out / ".pe-patch"
    if stamp.is_file() and stamp.read_text() == patch.read_text():
        return out
    if out.exists():
        shutil.rmtree(out)
    say(f"copying {tree.name} (hard links) and applying {patch.name}")
    _run(["cp", "-al", str(tree), str(out)], "copying the source tree")
    _run(["patch", "-p1", "--no-backup-if-mismatch", "-i", str(patch.resolve())],
         f"applying {patch.name}", cwd=out)
    stamp.write_text(patch.read_text())
    return out


# --- building --------------------------------------------------------------------------

@dataclass(frozen=True)
class BuildResult:
    """A built variant: its Image and .config, the seconds each step took, the
    config differences from Debian's, and the make log."""

    variant: Variant
    image: Path
    config: Path
    seconds: float
    config_seconds: float
    differences: dict[str, object]
    log: Path
    incremental_seconds: float | None = None


def build_variant(variant: Variant, debian_config: Path, work: Path = DEFAULT_WORK,
                  patch: Path | None = None, jobs: int = 2, timeout_s: int = 3 * 3600,
                  pgid_file: Path | None = None, progress: object = print) -> BuildResult:
    """Configure and build `variant` (`make O=work/build/NAME Image`) under `nice -n 19`
    in its own process group (written to `pgid_file` while it runs). A failed build
    raises CaptureError with the last lines of the log (`work/build/NAME/build.log`)."""
    say = progress if callable(progress) else (lambda _msg: None)
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        raise CaptureError("aarch64-linux-gnu-gcc is not installed: apt-get install "
                           "gcc-aarch64-linux-gnu flex bison bc libssl-dev libelf-dev")
    tree = source_tree(work, say)
    if variant.patched:
        if patch is None or not patch.is_file():
            raise CaptureError(f"a patched variant needs the patch file (got {patch})")
        tree = patched_tree(tree, patch, say)
    out = work / "build" / variant.name
    out.mkdir(parents=True, exist_ok=True)
    debian_text = debian_config.read_text()
    (out / ".config").write_text(trimmed_config(debian_text, variant, platforms(tree)))
    cc = ["CC=ccache aarch64-linux-gnu-gcc"] if shutil.which("ccache") else []
    make = ["make", "-C", str(tree), f"O={out}", "ARCH=arm64",
            "CROSS_COMPILE=aarch64-linux-gnu-", *cc]
    env = dict(os.environ, CCACHE_BASEDIR=str(work), CCACHE_NOHASHDIR="1",
               KBUILD_BUILD_TIMESTAMP="2026-01-01", KBUILD_BUILD_USER="pe",
               KBUILD_BUILD_HOST="pe")
    started = time.monotonic()
    _run_env([*make, "olddefconfig"], "make olddefconfig", env)
    config_seconds = time.monotonic() - started
    built_text = (out / ".config").read_text()
    wrong = check_config(debian_text, built_text, variant)
    if wrong:
        raise CaptureError(f"{variant.name}: the config after olddefconfig is not what the "
                           "capture needs: " + "; ".join(wrong))
    log = out / "build.log"
    fresh = not (out / "arch" / "arm64" / "boot" / "Image").is_file()
    say(f"building {variant.name} ({tree.name}, O={out}) with -j{jobs} under nice -n 19")
    started = time.monotonic()
    with open(log, "ab" if not fresh else "wb") as f:
        proc = subprocess.Popen(["nice", "-n", "19", *make, f"-j{jobs}", "Image"], stdout=f,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
        if pgid_file is not None:
            pgid_file.write_text(f"{proc.pid}\n")
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            raise CaptureError(f"{variant.name}: the build did not finish in {timeout_s}s; "
                               f"see {log}") from None
        finally:
            if pgid_file is not None:
                pgid_file.unlink(missing_ok=True)
    seconds = time.monotonic() - started
    if rc:
        tail = log.read_text(errors="replace").strip().splitlines()[-12:]
        raise CaptureError(f"{variant.name}: the build failed (make exit {rc}) after "
                           f"{seconds:.0f}s:\n" + "\n".join(tail))
    say(f"{variant.name} built in {seconds:.0f}s")
    # The time of the full build is kept: a later call that finds the Image up to date
    # reports it (and its own, incremental, time as `incremental_seconds`).
    stamp = out / ".pe-build-seconds"
    incremental = None
    if fresh or not stamp.is_file():
        stamp.write_text(f"{seconds:.0f}\n")
    else:
        incremental, seconds = seconds, float(stamp.read_text())
    return BuildResult(variant=variant, image=out / "arch" / "arm64" / "boot" / "Image",
                       config=out / ".config", seconds=seconds, config_seconds=config_seconds,
                       differences=config_differences(debian_text, built_text), log=log,
                       incremental_seconds=incremental)


def _run_env(cmd: list[str], what: str, env: dict[str, str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise CaptureError(f"{what}: failed: {' / '.join(tail)}")


def build_meta(result: BuildResult, debian_package: str) -> dict[str, object]:
    """The bundle meta entries that say how the kernel was built."""
    v = result.variant
    return {
        "kernel_build": (f"{SOURCE_PACKAGE} built for {v.page_size}/{v.va_bits}"
                         + (" with RFC patch 02/11 adapted (data/patches/)" if v.patched else "")
                         + f" from {debian_package}'s config trimmed (kbuild.py: no modules, "
                         "DRM, sound, wireless, networking, debug info, BTF, SoC platforms; "
                         "PTDUMP_DEBUGFS, PERCPU_STATS)"),
        "variant": v.name,
        "patched": v.patched,
        "build_seconds": round(result.seconds),
        "config_differences": result.differences,
    }


# --- build, boot, capture ----------------------------------------------------------------

PATCH_FILE = "0002-arm64-mm-define-percpu-virtual-space-area-6.12.diff"


def default_patch() -> Path:
    """data/patches/ of the project: patch 02/11 adapted to 6.12."""
    return DATA_DIR / "patches" / PATCH_FILE


def capture_variant(variant: Variant, plan: QemuPlan, work: Path = DEFAULT_WORK,
                    patch: Path | None = None, pgid_file: Path | None = None,
                    jobs: int = 2, progress: object = print) -> CaptureBundle:
    """Build `variant` from Debian's source with the package's config trimmed
    (`build_variant`), boot it with `plan` (`capture_qemu`) and return the bundle, its
    meta saying how the kernel was built, every config difference from Debian's and how
    long the build and the boot took."""
    say = progress if callable(progress) else (lambda _msg: None)
    _image, debian_config = find_kernel(fetch_package(plan.kernel_package, work))
    if variant.patched and patch is None:
        patch = default_patch()
    result = build_variant(variant, debian_config, work, patch=patch, jobs=jobs,
                           pgid_file=pgid_file, progress=say)
    started = time.monotonic()
    bundle = capture_qemu(replace(plan, kernel_image=result.image, kernel_config=result.config,
                                  rebuild=False), work, progress=say)
    boot_seconds = time.monotonic() - started
    meta = dict(bundle.meta, **build_meta(result, plan.kernel_package),
                boot_seconds=round(boot_seconds))
    release_file = result.config.parent / "include" / "config" / "kernel.release"
    if not meta.get("kernel_release") and release_file.is_file():
        # a boot that failed before printing its banner: the release the build wrote
        release = release_file.read_text().strip()
        meta.update(kernel_release=release, kernel_version=kernel_version_from_release(release))
    if variant.patched and patch is not None:
        meta["patch"] = patch.name
    return CaptureBundle(meta=meta, texts=bundle.texts)
