"""Hypothesis strategies for the command line's arguments and for the files it reads.

Values lean on each option's limits (CONFIG_NR_CPUS 2..4096, INT_MAX for a unit,
2**64 for a size_t, [0, 1] for a share ...): the limit, one either side, zero,
negatives, huge numbers, unit suffixes, floats that are not finite, unicode, undecodable
file-name bytes (as surrogate escapes) and empty strings; valid values are mixed in so
that the commands also run past their parsers.
"""

from __future__ import annotations

from hypothesis import strategies as st

INT_MAX = (1 << 31) - 1
SIZE_MAX = (1 << 64) - 1
NR_CPUS = 4096

# Text the shell can hand over: any unicode, surrogate escapes of undecodable bytes,
# control characters and line breaks (which must not break the one-line error).
weird_text = st.one_of(
    st.just(""), st.just(" "), st.just("\n"), st.just("\udcff"), st.just("-"), st.just("--"),
    st.just("é"), st.just("４"), st.just("0x"), st.just("1e999"), st.just("NaN"),
    st.text(max_size=12),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=6),
    st.text(alphabet="0123456789xXkKmMgGbBiI.-+_ eE", max_size=10),
)


def around(*limits: int) -> st.SearchStrategy[int]:
    """Integers at, just past and far past each limit, plus 0, -1 and huge ones."""
    points = {0, 1, -1, 2**31, 2**32, 2**63, 2**64, -(2**63), 10**20, 10**30}
    for limit in limits:
        points |= {limit - 1, limit, limit + 1, 2 * limit, -limit}
    return st.one_of(st.sampled_from(sorted(points)), st.integers(-(2**70), 2**70))


def int_text(*limits: int) -> st.SearchStrategy[str]:
    return st.one_of(around(*limits).map(str), weird_text,
                     around(*limits).map(lambda n: f" {n} "),
                     around(*limits).map(lambda n: f"+{n}"))


UNITS = ["", "K", "k", "KB", "KiB", "kib", "M", "MB", "G", "T", "P", "E", "Z", "B", " K", "x"]


def size_text(*limits: int) -> st.SearchStrategy[str]:
    number = around(*limits, 4096, 32768)
    return st.one_of(
        number.map(str), weird_text,
        st.tuples(st.integers(-3, 2**21), st.sampled_from(UNITS)).map(lambda t: f"{t[0]}{t[1]}"),
        st.tuples(number, st.sampled_from(UNITS)).map(lambda t: f"{t[0]}{t[1]}"),
        st.sampled_from(["4K", "16K", "64K", "128K", "2M", "1G", "2G", "8E", "16E", "1.5K"]),
    )


def float_text(*limits: float) -> st.SearchStrategy[str]:
    points = ["nan", "inf", "-inf", "1e308", "1e-320", "-0.0", "0", "1", "0.5", "1e9", "-1"]
    points += [repr(x) for lim in limits for x in (lim, lim - 1e-9, lim + 1e-9, -lim)]
    return st.one_of(st.sampled_from(points), weird_text,
                     st.floats(allow_nan=True, allow_infinity=True).map(repr))


def choice_text(choices: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(choices), weird_text,
                     st.sampled_from(choices).map(str.upper),
                     st.lists(st.sampled_from(choices), min_size=1, max_size=3).map(",".join))


def mostly(valid: st.SearchStrategy[str], invalid: st.SearchStrategy[str],
           bad_in: int = 6) -> st.SearchStrategy[str]:
    """`valid` values, and one time in `bad_in` an `invalid` one."""
    return st.integers(0, bad_in - 1).flatmap(lambda i: invalid if i == 0 else valid)


def ints(low: int, high: int, *limits: int) -> st.SearchStrategy[str]:
    """A whole number option valid from low to high."""
    return mostly(st.integers(low, high).map(str), int_text(low, high, *limits))


def sizes(low: int, high: int, *limits: int) -> st.SearchStrategy[str]:
    """A size option valid from low to high, in the size syntax."""
    valid = st.one_of(st.integers(low, min(high, 1 << 22)).map(str),
                      st.sampled_from(["4K", "16K", "64k", "128K", "1M", "2MiB", "32KB"]),
                      st.integers(low, high).map(str))
    return mostly(valid, size_text(low, high, *limits))


def choices(options: list[str]) -> st.SearchStrategy[str]:
    return mostly(st.sampled_from(options), choice_text(options))


def floats(low: float, high: float) -> st.SearchStrategy[str]:
    valid = st.floats(low, high, allow_nan=False).map(repr)
    return mostly(valid, float_text(low, high))


KERNELS = ["5.17", "6.1", "6.8", "6.9", "6.12.117", "6.16", "7.0", "7.1", "7.1-rc1"]
BAD_KERNELS = ["5.16", "7.2", "v6.8 ", "4.19", "6", "99999999999999999999.1", "6.8.-1"]
kernel_text = mostly(st.sampled_from(KERNELS),
                     st.one_of(st.sampled_from(BAD_KERNELS), weird_text))
address_text = mostly(
    st.one_of(st.sampled_from(["0xffff800000000000", "0xfffffd7fffffe000",
                               "0xffffffffffffffff", "0xfffffbfffe000000", "0"]),
              st.integers(0, 2**64 - 1).map(hex)),
    st.one_of(st.sampled_from(["0x10000000000000000", "-1", "ffff8000_0000_0000"]),
              st.integers(-(2**65), 2**66).map(hex), weird_text))

FLAG = object()  # an option that takes no value

# Options of every subcommand and a strategy for each one's value.
CONFIG_OPTIONS = {
    "--page-size": mostly(st.sampled_from(["4K", "16K", "64K", "4096", "16KiB"]),
                          size_text(4096, 65536)),
    "--va-bits": mostly(st.sampled_from(["39", "42", "47", "48", "52"]), int_text(36, 52)),
    "--vabits-actual": mostly(st.sampled_from(["47", "48", "52"]), int_text(48, 52)),
    "--kasan": choices(["none", "generic", "sw-tags"]),
    "--kernel": kernel_text,
    "--nr-cpus": ints(2, NR_CPUS),
    "--local-percpu": FLAG, "--kvm": FLAG, "--no-kpti": FLAG, "--no-ghes": FLAG,
    "--sdei": FLAG, "--no-relocatable": FLAG, "--btmap-extra-page": FLAG,
}
FORMATS = {"--format": choices(["table", "csv", "json", "text"])}
PERCPU_OPTIONS = {
    "--static-size": sizes(1, INT_MAX), "--reserved-size": sizes(0, INT_MAX),
    "--dyn-size": sizes(0, INT_MAX),
}
OPS = ["read", "write", "add", "sub", "inc", "dec", "and", "or", "add_return", "xchg",
       "cmpxchg", "try_cmpxchg", "cmpxchg128"]
OPS_OPTIONS = {
    "--preempt": choices(["none", "voluntary", "full", "lazy", "rt"]),
    "--kernel": kernel_text, "--vhe": FLAG, "--no-vhe": FLAG,
    "--core": choices(["neoverse-n1", "neoverse-v2", "ampereone"]),
    "--lse-execution": choices(["auto", "near", "far"]),
    "--resched-probability": floats(0, 1),
    "--local-offset": choices(["variable", "constant"]),
    "--local-bracket": FLAG, "--local-raw-cpu": FLAG,
}
OP_CHOICES = {
    "--op": choices(OPS), "--size": mostly(st.sampled_from(["1", "2", "4", "8", "16"]),
                                           int_text(1, 16)),
    "--flavour": choices(["this_cpu", "__this_cpu", "raw_cpu"]),
    "--scheme": choices(["today", "local"]), "--atomics": choices(["lse", "llsc", "plain"]),
}

SUBCOMMANDS: dict[str, tuple[list, dict]] = {
    # name: (positional value strategies, options)
    "layout": ([], {**CONFIG_OPTIONS, **FORMATS}),
    "configs": ([], {"--kernel": kernel_text, "--kasan": CONFIG_OPTIONS["--kasan"], **FORMATS}),
    "walk": ([address_text], {"--cpu": ints(0, 3, NR_CPUS), "--unit-size":
                              sizes(1, INT_MAX), **CONFIG_OPTIONS, **FORMATS}),
    "pgtables": ([], {"--unit-size": sizes(1, INT_MAX), **CONFIG_OPTIONS, **FORMATS}),
    "first-chunk": ([], {**CONFIG_OPTIONS, **PERCPU_OPTIONS, **FORMATS}),
    "ops": ([], {**OP_CHOICES, **OPS_OPTIONS, **FORMATS}),
    "interleave": ([], {**OP_CHOICES, "--irq": FLAG, "--all": FLAG, **OPS_OPTIONS, **FORMATS}),
    "claims": ([], {"--kernel": kernel_text, **FORMATS}),
    "app": ([], {"--host": mostly(st.sampled_from(["127.0.0.1", "::1", "localhost",
                                                    "0.0.0.0"]),
                                  st.one_of(st.just("256.1.1.1"), weird_text)),
                 "--port": ints(1, 65535), "--load-test": FLAG,
                 "--sessions": ints(1, 60), "--drop": ints(0, 59)}),
    "capture": ([], {"--qemu": FLAG, "--local": FLAG,
                     "--out": mostly(st.just("out"), st.sampled_from(["", " ", "\udcff"])),
                     "--cpu": mostly(st.sampled_from(["max", "cortex-a72", "max,lpa2=off"]),
                                     weird_text),
                     "--smp": ints(1, NR_CPUS), "--memory": ints(128, 2**20),
                     "--no-kaslr": FLAG, "--cgroups": ints(0, 100_000),
                     "--kernel-package": mostly(st.just("linux-image-arm64"), weird_text),
                     "--timeout": ints(1, 7 * 86400), "--rebuild": FLAG,
                     "--build": mostly(st.sampled_from(["16k-47", "64k-52", "4k-48-patched"]),
                                       weird_text),
                     "--patched": FLAG,
                     "--work": mostly(st.just("work"), st.just(""))}),
    "census": ([mostly(st.sampled_from(["debian-6.12.117-max-smp2",
                                        "debian-6.12.117-cortex-a57-smp2"]), weird_text)],
               {"--qemu": FLAG, "--vhe": FLAG,
                "--out": mostly(st.just("out"), st.sampled_from(["", " ", "\udcff"])),
                "--cpu": mostly(st.sampled_from(["max", "cortex-a57"]), weird_text),
                "--smp": ints(1, 8), "--memory": ints(256, 16384),
                "--workload": mostly(st.sampled_from(["fork_exec", "pipe", "memcg"]),
                                     weird_text),
                "--kernel-package": mostly(st.just("linux-image-arm64"), weird_text),
                "--timeout": ints(1, 7 * 86400),
                "--work": mostly(st.just("work"), st.just("")),
                "--to-workload": mostly(st.sampled_from(["page_faults", "memcg", "boot"]),
                                        weird_text), **FORMATS}),
}
# Options every case of a subcommand has (a required option, mostly valid).
REQUIRED = {"first-chunk": ["--static-size"], "capture": ["--out"]}


@st.composite
def command_line(draw: st.DrawFn, name: str, extra_options: dict | None = None,
                 positionals: list[str] | None = None) -> list[str]:
    """An argv for subcommand `name`: its positionals, some of its options with values
    from their strategies, and now and then a stray token."""
    pos_strategies, options = SUBCOMMANDS.get(name, ([], {}))
    options = {**options, **(extra_options or {})}
    argv = [name, *(positionals or [draw(s) for s in pos_strategies])]
    chosen = draw(st.lists(st.sampled_from(sorted(options)), max_size=4, unique=True))
    chosen += [o for o in REQUIRED.get(name, []) if o not in chosen and draw(st.integers(0, 7))]
    if name == "capture" and draw(st.integers(0, 7)):
        chosen.append(draw(st.sampled_from(["--qemu", "--local"])))
    for option in chosen:
        value = options[option]
        if value is FLAG:
            argv.append(option)
        elif draw(st.integers(0, 9)) == 0:
            argv.append(f"{option}={draw(value)}")
        else:
            argv += [option, draw(value)]
    if draw(st.integers(0, 14)) == 0:
        argv.insert(draw(st.integers(1, len(argv))), draw(weird_text))
    return argv
