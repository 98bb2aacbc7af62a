"""The capture bundles shipped in data/captures/.

They were made by `make capture`: Debian's arm64 kernel 6.12.117+deb12-arm64 (4K pages,
CONFIG_ARM64_VA_BITS=52, NR_CPUS=512) booted under qemu-system-aarch64 7.2 with `-M virt`:
- debian-6.12.117-max-smp4: `-cpu max` (LPA2: runs with 52-bit VA), 4 CPUs, KASLR on;
- debian-6.12.117-a72-smp8-nokaslr: `-cpu cortex-a72` (no LPA2: 48-bit VA), 8 CPUs,
  nokaslr;
and by `make capture-ptdump` (the same source rebuilt with CONFIG_PTDUMP_DEBUGFS and
CONFIG_PERCPU_STATS): debian-6.12.117-ptdump-a72-smp4 and -ptdump-max-smp4, 4 CPUs.
All ran a workload creating and removing 200 memory cgroups.
"""

import pytest

from percpu_explorer.captures import load_bundle

from ..conftest import DATA

CAPTURES = DATA / "captures"
MAX4 = CAPTURES / "debian-6.12.117-max-smp4"
A72 = CAPTURES / "debian-6.12.117-a72-smp8-nokaslr"
# debian-6.12.117-ptdump-{a72,max}-smp4: linux-source-6.12 (6.12.117) built with the
# package's config plus CONFIG_PTDUMP_DEBUGFS and CONFIG_PERCPU_STATS (`make capture-ptdump`).
PTDUMP_A72 = CAPTURES / "debian-6.12.117-ptdump-a72-smp4"
PTDUMP_MAX = CAPTURES / "debian-6.12.117-ptdump-max-smp4"
SHIPPED = sorted(p for p in CAPTURES.iterdir() if (p / "meta.json").is_file())
# Boots that failed (meta "boot_failed"): only the console, held by test_failed_boots.
FAILED_BOOTS = [p for p in SHIPPED if '"boot_failed": true' in (p / "meta.json").read_text()]
# Workloads of several shells at once (meta "workload" ... "shells at once"): allocations
# of several CPUs race; test_replay holds what the replay makes of them.
RACED = [p for p in SHIPPED if "shells at once" in (p / "meta.json").read_text()]
BUNDLES = [p for p in SHIPPED if p not in FAILED_BOOTS and p not in RACED]
# Kernels built from linux-source-6.12 per variant (captures/kbuild.py: meta "variant");
# the others run Debian's own 4K/52 configuration.
BUILT = [p for p in BUNDLES if '"variant"' in (p / "meta.json").read_text()]
DEBIAN_CONFIG = [p for p in BUNDLES if p not in BUILT]


@pytest.fixture(scope="module", params=BUNDLES, ids=lambda p: p.name)
def bundle(request):
    return load_bundle(request.param)


@pytest.fixture(scope="module", params=DEBIAN_CONFIG, ids=lambda p: p.name)
def debian_bundle(request):
    """A bundle of a kernel with Debian's own arm64 configuration (4K/52)."""
    return load_bundle(request.param)
