"""this_cpu_*() operations on arm64: the instruction sequences and what they cost.

Parameters shared by everything in this module:

op: read, write, add, sub, inc, dec, and, or, add_return, xchg, cmpxchg, try_cmpxchg,
    cmpxchg128 (the `this_cpu_<op>()` family of include/linux/percpu-defs.h).
size: bytes of the per-CPU variable, 1/2/4/8 (16 for cmpxchg128; 16 for read is a
    hypothetical this_cpu_read of a 16-byte value: the kernel has none, see `OpSequence.notes`).
flavour: "this_cpu" (preemption-safe), "__this_cpu" (caller guards preemption; the same
    code as raw_cpu_* unless CONFIG_DEBUG_PREEMPT adds a check) or "raw_cpu".
scheme: "today" (mainline: address from TPIDR_EL1/EL2, inside a preemption bracket) or
    "local" (the RFC's local percpu mapping: one address meaning "my copy" on every CPU,
    no bracket; assumed, see `LocalScheme`).
atomics: "lse" (ARM64_HAS_LSE_ATOMICS patched in), "llsc" (the LL/SC fallback), or
    "plain" (hypothetical: a plain load/modify/store body, to show what the local scheme
    cannot protect).
preempt: the preemption model (kernel/Kconfig.preempt; `kernel.preempt_choices` says which
    an arm64 kernel of a version offers): "none"/"voluntary" (modelled without
    CONFIG_PREEMPT_COUNT, as Debian's 6.12: the bracket is barrier() only), "full", "lazy",
    "rt" (a preempt count, preempt_schedule_notrace() when due). From v7.0 arm64 has only
    full, lazy and rt (7dadeaa6e851); asking for another is a ValueError.
kernel: kernel version; decides the percpu.h changes of `fixes.PERCPU_FIXES` (e.g. from
    v6.18 and 6.12.112 the non-returning LSE ops are ldadd/ldclr/ldset with an unused
    result instead of stadd/stclr/stset).
vhe: the CPU offset is read from TPIDR_EL2 (True: the kernel runs at EL2 with VHE, as a
    bare-metal host on the modelled server cores boots) or TPIDR_EL1 (False: a guest, or
    QEMU without EL2 as in the captures): the ALTERNATIVE in __kern_my_cpu_offset().

Every instruction is an `Insn` carrying its cost class and, for the interleaving
simulator, its effect. Cost of one op = sum of the class costs over its sequence, plus
the rare preempt_schedule_notrace() path as probability x cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import pandas as pd

from ..errors import InputError, shown
from ..kernel import (
    DEFAULT_KERNEL,
    PREEMPT_MODELS,
    check_preempt,
    has_preempt_count,
    parse_kernel_version,
)
from .fixes import base_release, has_fix, percpu_fix

OPS = ("read", "write", "add", "sub", "inc", "dec", "and", "or", "add_return", "xchg",
       "cmpxchg", "try_cmpxchg", "cmpxchg128")
FLAVOURS = ("this_cpu", "__this_cpu", "raw_cpu")
SCHEMES = ("today", "local")
ATOMICS = ("lse", "llsc", "plain")
SIZES = (1, 2, 4, 8)
LSE_EXECUTION = ("auto", "near", "far")
DEFAULT_PREEMPT = "full"  # offered by every modelled kernel
DEFAULT_VHE = True

# Preemption models with CONFIG_PREEMPTION (involuntary preemption in kernel mode); each
# has a preempt count too. The modelled none/voluntary kernels have neither.
PREEMPTIBLE_MODELS = tuple(m for m in PREEMPT_MODELS if has_preempt_count(m))
COUNTING_MODELS = PREEMPTIBLE_MODELS

# Cost classes an instruction can belong to (keys of CoreProfile.costs).
COST_CLASSES = ("alu", "branch", "nop", "mrs_tpidr", "mrs_sp_el0", "load", "store", "prfm",
                "lse_atomic", "lse_cas", "lse_casp", "ldx", "stx", "ldxp", "stxp", "call")

# Effects the interleaving simulator understands (percpu_explorer.interleave).
EFFECTS = ("none", "preempt_inc", "preempt_dec", "tpidr", "local_off", "load", "load_lo",
           "load_hi", "modify", "store", "atomic", "cas", "ldx", "stx", "cmp_exit", "retry")


def _choose(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    if isinstance(value, bool) or value not in choices:
        raise InputError(f"{name} {shown(value)} is unknown; choose one of "
                         f"{', '.join(str(c) for c in choices)}", field=name)


def sizes_for(op: str) -> tuple[int, ...]:
    """The sizes `op` exists for: 1/2/4/8, 16 for cmpxchg128; read also takes 16 (hypothetical)."""
    _choose("op", op, OPS)
    if op == "cmpxchg128":
        return (16,)
    if op == "read":
        return (*SIZES, 16)
    return SIZES


def default_size(op: str) -> int:
    """The size an op is looked at when none is given: 8 bytes, 16 for cmpxchg128."""
    return 16 if op == "cmpxchg128" else 8


def check_op_size(op: str, size: int) -> None:
    """InputError unless `size` is allowed for `op`."""
    allowed = sizes_for(op)
    if isinstance(size, bool) or size not in allowed:
        raise InputError(f"size {shown(size)} is not allowed for op {op!r}; choose one of "
                         f"{', '.join(map(str, allowed))}", field="size")


@dataclass(frozen=True)
class Insn:
    """One arm64 instruction of an op's sequence.

    text: the instruction as the kernel would emit it (registers illustrative).
    cls: cost class (see COST_CLASSES). part: "bracket" (preempt_disable/enable_notrace),
    "offset" (address formation), "op" (the access) or "after" (work after the bracket).
    effect: what the interleaving simulator does (see EFFECTS). label: a branch target
    ("1" or "2", as in the kernel's inline asm). target: where a branch may go.
    """

    text: str
    cls: str
    part: str = "op"
    effect: str = "none"
    label: str | None = None
    target: str | None = None

    def __repr__(self) -> str:
        return f"Insn({self.text!r}, {self.cls})"


@dataclass(frozen=True)
class LocalScheme:
    """What the model assumes patch 11/11 ("arm64: percpu: use local percpu for
    this_cpu_*() APIs") emits. The patch text is not public; change this to test
    another reading.

    offset: how the local address is formed. "variable": __per_cpu_local_off (patch
        07/11) is a kernel variable loaded with adrp+ldr and added to the percpu
        pointer; "constant": the offset is a link-time constant folded into the address.
    bracket: False: no preempt_disable/enable_notrace() around the access (the point of
        the series); True keeps today's bracket (to isolate the offset saving).
    raw_cpu_local: whether raw_cpu_*/__this_cpu_* also switch to the local address
        (False: they keep raw_cpu_ptr() via TPIDR, as the patch title names this_cpu_*()).
    The access itself (LSE instruction or LL/SC loop) is assumed unchanged.
    """

    offset: str = "variable"
    bracket: bool = False
    raw_cpu_local: bool = False

    def __post_init__(self) -> None:
        _choose("offset", self.offset, ("variable", "constant"))

    def describe(self) -> str:
        offset = ("adrp+ldr of __per_cpu_local_off (patch 07/11) and an add"
                  if self.offset == "variable" else "a link-time constant offset (no load)")
        return (f"local scheme (assumed, patch 11/11 is not public): address = percpu "
                f"pointer + {offset}; "
                + ("today's preemption bracket kept" if self.bracket else "no preemption bracket")
                + "; the LSE instruction / LL/SC loop unchanged; raw_cpu_*/__this_cpu_* "
                + ("also use the local address" if self.raw_cpu_local else "unchanged (TPIDR)"))


DEFAULT_LOCAL_SCHEME = LocalScheme()


def lse_nonreturn_loads(kernel: str) -> bool | None:
    """True when the non-returning this_cpu add/and/or use LDADD/LDCLR/LDSET with an
    unused destination instead of STADD/STCLR/STSET (commit 535fdfc5a228, v6.18; 6.12.y
    from 6.12.112; not in 6.1.192); None for a stable release not verified either way
    (`fixes.PERCPU_FIXES["lse_load_form"]`)."""
    return has_fix("lse_load_form", kernel)


@dataclass(frozen=True)
class OpSequence:
    """The instruction sequence of one op under one scheme.

    insns: the common path, in order. resched: the rare path taken when
    preempt_enable_notrace() finds a reschedule due (None when the model has no check).
    vhe: whether the offset is read from TPIDR_EL2. unknown: keys of `fixes.PERCPU_FIXES`
    not verified for this kernel (the listing shows its base release's code).
    """

    op: str
    size: int
    flavour: str
    scheme: str
    atomics: str
    preempt: str
    kernel: str
    insns: tuple[Insn, ...]
    resched: Insn | None = None
    notes: tuple[str, ...] = ()
    source: str = ""
    vhe: bool = DEFAULT_VHE
    unknown: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.flavour}_{self.op}_{self.size}"

    @property
    def offset_register(self) -> str:
        """The system register __kern_my_cpu_offset() reads (ALTERNATIVE on VHE)."""
        return "tpidr_el2" if self.vhe else "tpidr_el1"

    def texts(self, part: str | None = None) -> list[str]:
        return [i.text for i in self.insns if part is None or i.part == part]

    def memory_accesses(self) -> int:
        """Instructions that touch the per-CPU variable."""
        return sum(i.effect in ("load", "load_lo", "load_hi", "store", "atomic", "cas", "ldx",
                                "stx") for i in self.insns)

    def format(self) -> str:
        vhe = "VHE, offset in tpidr_el2" if self.vhe else "no VHE, offset in tpidr_el1"
        lines = [f"{self.name}  [{self.scheme}, {self.atomics}, preempt={self.preempt}, "
                 f"kernel {self.kernel}, {vhe}]"]
        for i in self.insns:
            label = f"{i.label}:" if i.label else ""
            lines.append(f"  {label:<3}{i.text:<40} // {i.part}, {i.cls}")
        if self.resched is not None:
            lines.append(f"  (rare) {self.resched.text}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"OpSequence({self.name}, {self.scheme}, {self.atomics}, {len(self.insns)} insns)"


# --- building blocks -------------------------------------------------------------------

def _regs(size: int) -> tuple[str, str]:
    """(register prefix, size suffix) as __PERCPU_OP_CASE(w, sfx, ...) in asm/percpu.h."""
    return ("x" if size >= 8 else "w"), {1: "b", 2: "h", 4: "", 8: "", 16: ""}[size]


def _bracket_in(preempt: str) -> list[Insn]:
    """preempt_disable_notrace(): __preempt_count_inc(); barrier() with a preempt count
    (asm/preempt.h __preempt_count_add on current_thread_info(), i.e. sp_el0), else only
    barrier() (include/linux/preempt.h, !CONFIG_PREEMPT_COUNT)."""
    if preempt not in COUNTING_MODELS:
        return []
    return [Insn("mrs x10, sp_el0", "mrs_sp_el0", "bracket"),
            Insn("ldr w11, [x10, #TI_PREEMPT]", "load", "bracket"),
            Insn("add w11, w11, #1", "alu", "bracket"),
            Insn("str w11, [x10, #TI_PREEMPT]", "store", "bracket", "preempt_inc")]


def _bracket_out(preempt: str) -> tuple[list[Insn], Insn | None]:
    """preempt_enable_notrace() with CONFIG_PREEMPTION: __preempt_count_dec_and_test()
    (asm/preempt.h: 64-bit load, 32-bit store of the count, `!pc || !READ_ONCE(...)`) and a
    call to preempt_schedule_notrace() if due; without a count, barrier() only."""
    if preempt not in COUNTING_MODELS:
        return [], None
    return [Insn("ldr x11, [x10, #TI_PREEMPT]", "load", "bracket"),
            Insn("sub x11, x11, #1", "alu", "bracket"),
            Insn("str w11, [x10, #TI_PREEMPT]", "store", "bracket", "preempt_dec"),
            Insn("cbz x11, .Lresched", "branch", "bracket"),
            Insn("ldr x11, [x10, #TI_PREEMPT]", "load", "bracket"),
            Insn("cbz x11, .Lresched", "branch", "bracket")], Insn(
                "bl preempt_schedule_notrace", "call", "bracket")


def _offset(scheme: str, local: LocalScheme, fold: bool, vhe: bool, base: str = "x0",
            dest: str = "x0") -> list[Insn]:
    """Address formation: today __kern_my_cpu_offset() (asm/percpu.h: `mrs tpidr_el1`, the
    ALTERNATIVE patches in `mrs tpidr_el2` on VHE) added to the pointer; local: the assumed
    local offset. With `fold` the access takes [base, x12] (register-offset addressing);
    LSE atomics and exclusives take only a base register, so the sum goes to `dest`."""
    if scheme == "today":
        out = [Insn(f"mrs x12, {'tpidr_el2' if vhe else 'tpidr_el1'}", "mrs_tpidr", "offset",
                    "tpidr")]
    elif local.offset == "variable":
        out = [Insn("adrp x12, __per_cpu_local_off", "alu", "offset"),
               Insn("ldr x12, [x12, :lo12:__per_cpu_local_off]", "load", "offset", "local_off")]
    else:
        out = [Insn("mov x12, #LOCAL_OFFSET", "alu", "offset", "local_off")]
    if not fold:
        out.append(Insn(f"add {dest}, {base}, x12", "alu", "offset"))
    return out


_LLSC_ALU = {"add": "add", "and": "bic", "or": "orr"}
_LSE_ST = {"add": "stadd", "and": "stclr", "or": "stset"}
_LSE_LD = {"add": "ldadd", "and": "ldclr", "or": "ldset"}
_ADD_FAMILY = ("add", "sub", "inc", "dec", "and", "or", "add_return")


def _arith(op: str) -> str:
    return "and" if op == "and" else "or" if op == "or" else "add"


def _operand(op: str, size: int) -> list[Insn]:
    """What the this_cpu asm adds (include/linux/percpu-defs.h): this_cpu_sub(pcp, val) is
    this_cpu_add(pcp, -(typeof(pcp))(val)), inc/dec add 1 / -1, and this_cpu_and passes
    ~(uN)(val) to the andnot op; the asm takes it in a register ([val] "r")."""
    r, _ = _regs(size)
    if op == "inc":
        return [Insn(f"mov {r}1, #1", "alu")]
    if op == "dec":
        minus_one = "#-1" if size >= 4 else f"#{(1 << (8 * size)) - 1:#x}"  # (uN)-1
        return [Insn(f"mov {r}1, {minus_one}", "alu")]
    if op == "sub":
        return [Insn(f"neg {r}1, {r}1", "alu")]
    if op == "and":
        return [Insn(f"mvn {r}1, {r}1", "alu")]
    return []


@dataclass
class _Facts:
    """The percpu.h facts one op depends on, resolved for a kernel."""

    kernel: str
    notes: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def has(self, key: str) -> bool:
        """Whether the kernel carries fix `key`; an unverified stable release uses its
        base release's code and is listed in `unknown`."""
        known = has_fix(key, self.kernel)
        if known is not None:
            return known
        fix = percpu_fix(key)
        base = base_release(self.kernel)
        if key not in self.unknown:
            self.unknown.append(key)
            self.notes.append(f"unknown: whether {self.kernel} carries {fix.label} is not "
                              f"verified; shown: the code of v{base}")
        return bool(has_fix(key, base))


def _this_cpu_body(op: str, size: int, atomics: str, facts: _Facts
                   ) -> tuple[list[Insn], bool]:
    """The access of arm64's this_cpu_<op>_<size> (asm/percpu.h, asm/cmpxchg.h,
    asm/atomic_ll_sc.h, asm/atomic_lse.h). Returns (insns, fold) where fold says the
    offset goes in the addressing mode (plain ldr/str)."""
    r, sfx = _regs(size)
    if op == "read" and size == 16:
        return [Insn("ldr x3, [x0]", "load", effect="load_lo"),
                Insn("ldr x5, [x0, #8]", "load", effect="load_hi")], False
    if op == "read":  # __percpu_read_N: READ_ONCE
        return [Insn(f"ldr{sfx} {r}3, [x0, x12]", "load", effect="load")], True
    if op == "write":  # __percpu_write_N: WRITE_ONCE
        if not facts.has("write_cast"):
            facts.notes.append(f"before {percpu_fix('write_cast').label} the value is cast "
                               "as (unsigned long)val, binding only to the first term of an "
                               "expression argument (same instruction here)")
        return [Insn(f"str{sfx} {r}1, [x0, x12]", "store", effect="store")], True
    if atomics == "plain":
        return _plain_body(op, size)
    if op in _ADD_FAMILY:
        return _rmw_body(op, size, atomics, facts), False
    if op == "xchg":  # __XCHG_CASE(..., name="", mb="") via xchg_relaxed
        if atomics == "llsc":
            return [Insn("prfm pstl1strm, [x0]", "prfm"),
                    Insn(f"ldxr{sfx} {r}3, [x0]", "ldx", effect="ldx", label="1"),
                    Insn(f"stxr{sfx} w4, {r}1, [x0]", "stx", effect="stx"),
                    Insn("cbnz w4, 1b", "branch", effect="retry", target="1")], False
        return [Insn(f"swp{sfx} {r}1, {r}3, [x0]", "lse_atomic", effect="atomic"),
                Insn("nop", "nop"), Insn("nop", "nop"), Insn("nop", "nop")], False
    if op in ("cmpxchg", "try_cmpxchg"):  # cmpxchg_relaxed -> __lse_ll_sc_body(cmpxchg_case)
        if atomics == "llsc":  # __ll_sc__cmpxchg_case_N (atomic_ll_sc.h __CMPXCHG_CASE)
            cast = [Insn(f"and w2, w2, #{(1 << (8 * size)) - 1:#x}  // old = (u{8 * size})old",
                         "alu")] if size < 4 else []
            return [Insn("b .Lllsc  // alternative_has_cap_likely: not patched", "branch"),
                    *cast,
                    Insn("prfm pstl1strm, [x0]", "prfm"),
                    Insn(f"ldxr{sfx} {r}3, [x0]", "ldx", effect="ldx", label="1"),
                    Insn(f"eor {r}5, {r}3, {r}2", "alu"),
                    Insn(f"cbnz {r}5, 2f", "branch", effect="cmp_exit", target="2"),
                    Insn(f"stxr{sfx} w5, {r}1, [x0]", "stx", effect="stx"),
                    Insn("cbnz w5, 1b", "branch", effect="retry", target="1"),
                    Insn("b .Lback", "branch", label="2")], False
        # __lse__cmpxchg_case_N: `cas %[old], %[new]` with [old] "+r": the old value is
        # overwritten, so try_cmpxchg (which compares with it after) works on a copy.
        if op == "try_cmpxchg":
            return [Insn("nop  // alternative_has_cap_likely: LSE patched in", "nop"),
                    Insn(f"mov {r}3, {r}2  // cas overwrites old: compare with a copy", "alu"),
                    Insn(f"cas{sfx} {r}3, {r}1, [x0]", "lse_cas", effect="cas")], False
        return [Insn("nop  // alternative_has_cap_likely: LSE patched in", "nop"),
                Insn(f"cas{sfx} {r}2, {r}1, [x0]", "lse_cas", effect="cas")], False
    if op == "cmpxchg128":  # cmpxchg128_local -> __cmpxchg128 -> __lse_ll_sc_body
        if atomics == "llsc":  # atomic_ll_sc.h __CMPXCHG128(, , )
            return [Insn("b .Lllsc  // alternative_has_cap_likely: not patched", "branch"),
                    Insn("prfm pstl1strm, [x4]", "prfm"),
                    Insn("ldxp x8, x9, [x4]", "ldxp", effect="ldx", label="1"),
                    Insn("cmp x8, x6", "alu"),
                    Insn("ccmp x9, x7, #0, eq", "alu"),
                    Insn("b.ne 2f", "branch", effect="cmp_exit", target="2"),
                    Insn("stxp w10, x2, x3, [x4]", "stxp", effect="stx"),
                    Insn("cbnz w10, 1b", "branch", effect="retry", target="1"),
                    Insn("b .Lback", "branch", label="2")], False
        facts.notes.append(
            "__lse__cmpxchg128 (asm/atomic_lse.h) pins old to x0:x1, new to x2:x3 and the "
            "pointer to x4 (register asm); casp overwrites x0:x1 and the asm also takes old in "
            "other registers ([oldval1]/[oldval2]), so old is copied in: 2 moves. New and the "
            "address are assumed computed straight into x2:x3 and x4 (a caller holding them "
            "elsewhere pays more moves)")
        return [Insn("nop  // alternative_has_cap_likely: LSE patched in", "nop"),
                Insn("mov x0, x6  // old.low: casp pins it to x0", "alu"),
                Insn("mov x1, x7  // old.high: casp pins it to x1", "alu"),
                Insn("casp x0, x1, x2, x3, [x4]", "lse_casp", effect="cas")], False
    raise AssertionError(op)


def _rmw_body(op: str, size: int, atomics: str, facts: _Facts) -> list[Insn]:
    """add/sub/inc/dec/and/or/add_return: __PERCPU_OP_CASE / __PERCPU_RET_OP_CASE."""
    r, sfx = _regs(size)
    name = _arith(op)
    pre = _operand(op, size)
    if op == "and" and not facts.has("and_mask"):
        facts.notes.append(f"before {percpu_fix('and_mask').label} the mask is ~val in "
                           "val's own type, unparenthesised (same instruction for an operand "
                           "of the variable's size, as here)")
    if atomics == "llsc":  # the LL/SC half
        return [*pre,
                Insn(f"ldxr{sfx} {r}3, [x0]", "ldx", effect="ldx", label="1"),
                Insn(f"{_LLSC_ALU[name]} {r}3, {r}3, {r}1", "alu", effect="modify"),
                Insn(f"stxr{sfx} w4, {r}3, [x0]", "stx", effect="stx"),
                Insn("cbnz w4, 1b", "branch", effect="retry", target="1")]
    lse_sfx = sfx
    if size < 4 and not facts.has("lse_sizes"):
        lse_sfx = ""
        facts.notes.append(f"before {percpu_fix('lse_sizes').label} the LSE instruction has "
                           f"no {sfx} suffix: a 32-bit atomic on this {size}-byte variable "
                           f"(it covers the {4 - size} byte(s) after it too)")
    if op == "add_return":  # LSE half of __PERCPU_RET_OP_CASE: ldadd, add, __nops(2)
        return [*pre, Insn(f"ldadd{lse_sfx} {r}1, {r}3, [x0]", "lse_atomic", effect="atomic"),
                Insn(f"add {r}3, {r}3, {r}1", "alu"),
                Insn("nop", "nop"), Insn("nop", "nop")]
    if facts.has("lse_load_form"):
        insn = f"{_LSE_LD[name]}{lse_sfx} {r}1, {r}3, [x0]"
    else:
        insn = f"{_LSE_ST[name]}{lse_sfx} {r}1, [x0]"
        facts.notes.append(f"{_LSE_ST[name]} is {_LSE_LD[name]} with XZR as destination; "
                           f"from {percpu_fix('lse_load_form').label} a real (unused) "
                           "destination lets the core execute it near, in its cache")
    return [*pre, Insn(insn, "lse_atomic", effect="atomic"),
            Insn("nop", "nop"), Insn("nop", "nop"), Insn("nop", "nop")]


def _plain_body(op: str, size: int) -> tuple[list[Insn], bool]:
    """The generic raw_cpu_* bodies (asm-generic/percpu.h raw_cpu_generic_*): plain C on
    *raw_cpu_ptr(&pcp), which the compiler addresses as [x0, x12] (register offset) for
    loads and stores of up to 8 bytes; ldp/stp of 16 bytes need the sum in a register.
    raw_cpu_sub(pcp, val) is raw_cpu_add(pcp, -(val)) and inc/dec add 1 / subtract 1: plain
    C takes them as a sub or an immediate. Returns (insns, fold)."""
    r, sfx = _regs(size)
    at = "[x0, x12]"
    if op == "read":
        if size == 16:
            return [Insn("ldr x3, [x0]", "load", effect="load_lo"),
                    Insn("ldr x5, [x0, #8]", "load", effect="load_hi")], False
        return [Insn(f"ldr{sfx} {r}3, {at}", "load", effect="load")], True
    if op == "write":
        return [Insn(f"str{sfx} {r}1, {at}", "store", effect="store")], True
    if op in _ADD_FAMILY:  # raw_cpu_generic_to_op / raw_cpu_generic_add_return
        alu = {"add": f"add {r}3, {r}3, {r}1", "add_return": f"add {r}3, {r}3, {r}1",
               "sub": f"sub {r}3, {r}3, {r}1", "inc": f"add {r}3, {r}3, #1",
               "dec": f"sub {r}3, {r}3, #1", "and": f"and {r}3, {r}3, {r}1",
               "or": f"orr {r}3, {r}3, {r}1"}[op]
        return [Insn(f"ldr{sfx} {r}3, {at}", "load", effect="load"),
                Insn(alu, "alu", effect="modify"),
                Insn(f"str{sfx} {r}3, {at}", "store", effect="store")], True
    if op == "xchg":  # raw_cpu_generic_xchg
        return [Insn(f"ldr{sfx} {r}3, {at}", "load", effect="load"),
                Insn(f"str{sfx} {r}1, {at}", "store", effect="store")], True
    if op in ("cmpxchg", "try_cmpxchg"):  # raw_cpu_generic_try_cmpxchg
        return [Insn(f"ldr{sfx} {r}3, {at}", "load", effect="load"),
                Insn(f"cmp {r}3, {r}2", "alu"),
                Insn("b.ne 2f", "branch", effect="cmp_exit", target="2"),
                Insn(f"str{sfx} {r}1, {at}", "store", effect="store")], True
    if op == "cmpxchg128":  # raw_cpu_generic_cmpxchg on a u128: ldp / cmp / stp
        return [Insn("ldp x8, x9, [x4]", "load", effect="load"),
                Insn("cmp x8, x6", "alu"),
                Insn("ccmp x9, x7, #0, eq", "alu"),
                Insn("b.ne 2f", "branch", effect="cmp_exit", target="2"),
                Insn("stp x2, x3, [x4]", "store", effect="store")], False
    raise AssertionError(op)


def _addresses(op: str, size: int) -> tuple[str, str]:
    """(register holding &pcp, register the address is formed in): a 16-byte cmpxchg keeps
    x0-x3 for old/new (casp) and forms the address in x4 as __lse__cmpxchg128 pins it."""
    return ("x5", "x4") if op == "cmpxchg128" else ("x0", "x0")


def op_sequence(op: str, size: int = 8, *, flavour: str = "this_cpu", scheme: str = "today",
                atomics: str = "lse", preempt: str = DEFAULT_PREEMPT,
                kernel: str = DEFAULT_KERNEL, local: LocalScheme = DEFAULT_LOCAL_SCHEME,
                vhe: bool = DEFAULT_VHE) -> OpSequence:
    """The instruction sequence of `<flavour>_<op>` on a `size`-byte variable.

    today, this_cpu: _pcp_protect()/_pcp_protect_return() in arch/arm64/include/asm/percpu.h:
    preempt_disable_notrace(); op(raw_cpu_ptr(&pcp)); preempt_enable_notrace().
    today, __this_cpu/raw_cpu: asm-generic/percpu.h raw_cpu_generic_* (plain accesses).
    local: `local` (an assumption) replaces the offset and drops the bracket.
    try_cmpxchg adds the fallback's compare of the returned value (asm-generic/percpu.h
    __cpu_fallback_try_cmpxchg). `preempt` must be a model arm64 offers in `kernel`
    (`kernel.check_preempt`).
    """
    _choose("op", op, OPS)
    _choose("flavour", flavour, FLAVOURS)
    _choose("scheme", scheme, SCHEMES)
    _choose("atomics", atomics, ATOMICS)
    check_op_size(op, size)
    kv = str(parse_kernel_version(kernel))
    check_preempt(preempt, kv)
    facts = _Facts(kv)
    notes = facts.notes
    r, _ = _regs(size)
    if op == "read" and size == 16:
        notes.append("hypothetical: the kernel has no 16-byte this_cpu_read "
                     "(__pcpu_size_call_return has no case 16); modelled as two 8-byte loads")
    if atomics == "plain" and flavour == "this_cpu" and op not in ("read", "write"):
        notes.append("hypothetical: arm64 never emits a plain load/modify/store for a "
                     "this_cpu read-modify-write; shown to test the local scheme's limits")
    if flavour == "this_cpu":
        body, fold = _this_cpu_body(op, size, atomics, facts)
        bracketed = scheme == "today" or local.bracket
        local_addr = scheme == "local"
        source = "arch/arm64/include/asm/percpu.h _pcp_protect/_pcp_protect_return"
    else:
        body, fold = _plain_body(op, size)
        bracketed = False
        local_addr = scheme == "local" and local.raw_cpu_local
        source = "include/asm-generic/percpu.h raw_cpu_generic_*"
        if flavour == "__this_cpu":
            notes.append("__this_cpu_* = raw_cpu_* plus a CONFIG_DEBUG_PREEMPT check "
                         "(not counted); the caller must disable preemption")
        if not local_addr:
            notes.append("one offset read can serve several raw_cpu_*/__this_cpu_* ops in a "
                         "row: see offset_reads()")
    pre = _bracket_in(preempt) if bracketed else []
    post, resched = _bracket_out(preempt) if bracketed else ([], None)
    base, dest = _addresses(op, size)
    offset = _offset("local" if local_addr else "today", local, fold, vhe, base, dest)
    after: list[Insn] = []
    if op == "try_cmpxchg":
        after = ([Insn("cset w0, eq", "alu", "after")] if atomics == "plain" or
                 flavour != "this_cpu" else
                 [Insn(f"cmp {r}3, {r}2", "alu", "after"), Insn("cset w0, eq", "alu", "after")])
    if bracketed and preempt not in COUNTING_MODELS:
        notes.append(f"no preempt count (PREEMPT_{preempt.upper()} without "
                     "CONFIG_PREEMPT_COUNT): preempt_disable/enable_notrace() are barrier() only")
    insns = tuple(pre + offset + body + post + after)
    return OpSequence(op, size, flavour, scheme, atomics, preempt, kv, insns, resched,
                      tuple(notes), source, vhe, tuple(facts.unknown))


def offset_reads(calls: Iterable[tuple[str, str]]) -> int:
    """How many CPU-offset reads (`mrs tpidr_el1/el2`) a run of (flavour, op) calls makes
    under today's scheme when inlined one after another in one function.

    __kern_my_cpu_offset() (asm/percpu.h) is a non-volatile asm whose only input is a fake
    read of the stack ("Q" (*current_stack_pointer)), so the compiler may reuse one read
    until something could change that memory: a barrier() (memory clobber) or a store
    (kernels build with -fno-strict-aliasing, so any store may alias it). Hence
    raw_cpu_*/__this_cpu_* reads in a row share one offset read, and a writing raw op can
    use the read before it but the next op reads again; each this_cpu_* op reads its own
    between the barrier()s of its preemption bracket (barrier() even without a count).
    """
    reads, live = 0, False
    for flavour, op in calls:
        _choose("flavour", flavour, FLAVOURS)
        _choose("op", op, OPS)
        if flavour == "this_cpu":
            reads, live = reads + 1, False
            continue
        if not live:
            reads += 1
        live = op == "read"
    return reads


# --- cost model ------------------------------------------------------------------------

_PROFILE_KEYS = ("name", "base", "costs", "sources", "resched_cost", "resched_probability",
                 "description")


def _cycles_ok(value: object) -> bool:
    """A cost in cycles: a finite number (not a bool) from 0 to 1e9."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and 0 <= value <= 1e9)


@dataclass(frozen=True)
class CoreProfile:
    """Cycle cost per instruction class for one core, with where each number comes from.

    costs: class -> cycles, for the classes in COST_CLASSES plus "lse_near"/"lse_far"
    (an LSE atomic executed in the L1 or out in the interconnect). sources: class -> text;
    a text starting with "estimate" marks a number not taken from a published table.
    resched_cost: cycles of one preempt_schedule_notrace() that switches task;
    resched_probability: the share of enable_notrace() calls that take it.
    Edit with `with_costs()` or build from a dict with `core_profile_from_dict()`.
    """

    name: str
    costs: Mapping[str, float]
    sources: Mapping[str, str]
    resched_cost: float = 3000.0
    resched_probability: float = 1e-4
    resched_source: str = ("estimate: one context switch ~1-2 us at ~2-3 GHz; probability "
                           "an estimate (share of this_cpu ops that find need_resched set)")
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "costs", MappingProxyType(dict(self.costs)))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        missing = [c for c in (*COST_CLASSES, "lse_near", "lse_far") if c not in self.costs
                   and c != "lse_atomic"]
        if missing:
            raise ValueError(f"core profile {self.name!r} lacks costs for {', '.join(missing)}")
        for key, value in self.costs.items():
            if not _cycles_ok(value):
                raise InputError(f"core profile {shown(self.name)}: cost of {shown(key)} must "
                                 f"be a non-negative number of cycles (0 to 1e9), not "
                                 f"{shown(value)}")
        if not _cycles_ok(self.resched_cost):
            raise InputError(f"core profile {shown(self.name)}: resched_cost must be a "
                             f"non-negative number of cycles (0 to 1e9), not "
                             f"{shown(self.resched_cost)}")
        p = self.resched_probability
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
            raise InputError(f"resched_probability {shown(p)} must be in [0, 1]",
                             field="resched_probability")

    def with_costs(self, **costs: float) -> CoreProfile:
        """A copy with some class costs changed (sources marked "user")."""
        sources = dict(self.sources) | {k: "user" for k in costs}
        return replace(self, costs=dict(self.costs) | costs, sources=sources)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{"class": k, "cycles": v, "source": self.sources.get(k, "")}
                             for k, v in self.costs.items()])

    def __repr__(self) -> str:
        return f"CoreProfile({self.name!r})"


# The Software Optimization Guides' latencies as LLVM's scheduling models encode them
# (read in llvm/llvm-project; the models cite the guides as their source).
_N1_SOG = ("Arm Neoverse N1 Software Optimization Guide via LLVM "
           "AArch64SchedNeoverseN1.td (llvm-project 02cec0a4)")
_V2_SOG = ("Arm Neoverse V2 Software Optimization Guide via LLVM "
           "AArch64SchedNeoverseV2.td (llvm-project 06d9edc0)")
_EST = "estimate"


def _profile(name: str, description: str, costs: dict[str, tuple[float, str]],
             **kw: Any) -> CoreProfile:
    return CoreProfile(name, {k: v for k, (v, _) in costs.items()},
                       {k: s for k, (_, s) in costs.items()}, description=description, **kw)


CORE_PROFILES: dict[str, CoreProfile] = {
    "neoverse-n1": _profile("neoverse-n1", "Neoverse N1 class (Ampere Altra, Graviton2)", {
        "alu": (1, f"{_N1_SOG}: WriteI (ALU, basic) latency 1"),
        "branch": (1, f"{_N1_SOG}: WriteBr / CBZ latency 1 (predicted)"),
        "nop": (0.25, f"{_EST}: 4-wide dispatch, nop costs issue bandwidth only"),
        "mrs_tpidr": (2, f"{_EST}: system-register read, not tabulated per register"),
        "mrs_sp_el0": (2, f"{_EST}: system-register read, not tabulated per register"),
        "load": (4, f"{_N1_SOG}: WriteLD (load register, immed offset) latency 4, L1 hit"),
        "store": (1, f"{_N1_SOG}: WriteST (store register) latency 1"),
        "prfm": (1, f"{_EST}: like a load issue slot"),
        "lse_near": (8, f"{_EST}: LSE atomic in L1 (load latency + ALU + write-back); "
                     "LLVM's N1 model leaves WriteAtomic unsupported"),
        "lse_far": (40, f"{_EST}: LSE atomic executed in the interconnect (SLC)"),
        "lse_cas": (10, f"{_EST}: CAS in L1"),
        "lse_casp": (12, f"{_EST}: CASP in L1"),
        "ldx": (4, f"{_EST}: as a load"),
        "stx": (6, f"{_EST}: exclusive store with status write-back"),
        "ldxp": (5, f"{_EST}: as a load pair"),
        "stxp": (7, f"{_EST}: exclusive pair store"),
        "call": (2, f"{_EST}: bl + ret, predicted (LLVM N1 model: BL latency 1)"),
    }),
    "neoverse-v2": _profile("neoverse-v2", "Neoverse V2 class (Grace, Graviton4)", {
        "alu": (1, f"{_V2_SOG}: ALU basic latency 1 (V2Write_1c_1I)"),
        "branch": (1, f"{_V2_SOG}: branch latency 1 (V2Write_1c_1B)"),
        "nop": (0.125, f"{_EST}: 8-wide dispatch, nop costs issue bandwidth only"),
        "mrs_tpidr": (2, f"{_EST}: system-register read, not tabulated per register"),
        "mrs_sp_el0": (2, f"{_EST}: system-register read, not tabulated per register"),
        "load": (4, f"{_V2_SOG}: LoadLatency / V2Write_4c_1L latency 4, L1 hit"),
        "store": (1, f"{_V2_SOG}: store latency 1 (V2Write_1c_1L01_1D)"),
        "prfm": (1, f"{_EST}: like a load issue slot"),
        "lse_near": (6, f"{_EST}: LSE atomic in L1"),
        "lse_far": (35, f"{_EST}: LSE atomic executed in the interconnect (SLC)"),
        "lse_cas": (8, f"{_EST}: CAS in L1"),
        "lse_casp": (10, f"{_EST}: CASP in L1"),
        "ldx": (4, f"{_EST}: as a load"),
        "stx": (5, f"{_EST}: exclusive store with status write-back"),
        "ldxp": (5, f"{_EST}: as a load pair"),
        "stxp": (6, f"{_EST}: exclusive pair store"),
        "call": (2, f"{_EST}: bl + ret, predicted"),
    }),
    "ampereone": _profile("ampereone", "AmpereOne class (the series' 160-core test machine)", {
        "alu": (1, f"{_EST}: no public per-instruction table for AmpereOne"),
        "branch": (1, f"{_EST}: no public per-instruction table for AmpereOne"),
        "nop": (0.25, f"{_EST}: issue bandwidth only"),
        "mrs_tpidr": (3, f"{_EST}: system-register read"),
        "mrs_sp_el0": (3, f"{_EST}: system-register read"),
        "load": (4, f"{_EST}: L1 load-to-use"),
        "store": (1, f"{_EST}"),
        "prfm": (1, f"{_EST}"),
        "lse_near": (10, f"{_EST}: LSE atomic in L1"),
        "lse_far": (50, f"{_EST}: LSE atomic executed far, 160-core mesh"),
        "lse_cas": (12, f"{_EST}"),
        "lse_casp": (14, f"{_EST}"),
        "ldx": (4, f"{_EST}: as a load"),
        "stx": (6, f"{_EST}"),
        "ldxp": (5, f"{_EST}"),
        "stxp": (7, f"{_EST}"),
        "call": (2, f"{_EST}"),
    }),
}
DEFAULT_CORE = "neoverse-n1"


def core_profile(name: str | CoreProfile) -> CoreProfile:
    """A named profile from CORE_PROFILES (or the profile itself)."""
    if isinstance(name, CoreProfile):
        return name
    _choose("core", name, tuple(CORE_PROFILES))
    return CORE_PROFILES[name]


def core_profile_from_dict(data: Mapping[str, Any]) -> CoreProfile:
    """A user profile: {"name", "base" (optional named profile to start from),
    "costs": {class: cycles}, "sources": {class: text}, "resched_cost",
    "resched_probability", "description"}. Classes not given come from `base`.
    InputError (one line) naming the key and what it must be otherwise."""
    if not isinstance(data, Mapping):
        raise InputError(f"a core profile is an object with keys {', '.join(_PROFILE_KEYS)}, "
                         f"not {type(data).__name__}")
    unknown_keys = [str(k) for k in data if k not in _PROFILE_KEYS]
    if unknown_keys:
        raise InputError(f"core profile key(s) {shown(unknown_keys)} are unknown; use "
                         f"{', '.join(_PROFILE_KEYS)}")
    base = core_profile(data.get("base", DEFAULT_CORE))
    given_costs = data.get("costs", {})
    given_sources = data.get("sources", {})
    for key, value in (("costs", given_costs), ("sources", given_sources)):
        if not isinstance(value, Mapping):
            raise InputError(f"core profile {key} must be an object {{class: "
                             f"{'cycles' if key == 'costs' else 'text'}}}, not "
                             f"{type(value).__name__}")
    unknown = [k for k in given_costs if k not in base.costs]
    if unknown:
        raise InputError(f"unknown cost class {', '.join(map(shown, unknown))}; choose from "
                         f"{', '.join(base.costs)}")
    for key in ("name", "description"):
        if key in data and not isinstance(data[key], str):
            raise InputError(f"core profile {key} must be text, not {shown(data[key])}")
    if any(not isinstance(v, str) for v in given_sources.values()):
        raise InputError("core profile sources must map each cost class to a text")
    costs = dict(base.costs) | dict(given_costs)
    sources = dict(base.sources) | {k: "user" for k in given_costs}
    sources |= {str(k): v for k, v in given_sources.items()}
    return CoreProfile(data.get("name", "user"), costs, sources,
                       resched_cost=data.get("resched_cost", base.resched_cost),
                       resched_probability=data.get("resched_probability",
                                                    base.resched_probability),
                       description=data.get("description", "user profile"))


@dataclass(frozen=True)
class OpCost:
    """Cycles of one op: `common` (sum over the sequence) + `resched` (probability x cost).

    estimated: the cost classes (profile keys, "resched" for the rare path) whose numbers
    the profile marks as estimates; when any is, the cost is an estimate and is shown in
    whole cycles (`format_cycles`).
    """

    sequence: OpSequence
    core: str
    common: float
    resched: float
    by_part: Mapping[str, float] = field(default_factory=dict)
    estimated: tuple[str, ...] = ()

    @property
    def cycles(self) -> float:
        return self.common + self.resched

    @property
    def is_estimate(self) -> bool:
        return bool(self.estimated)

    def text(self) -> str:
        """The cycles as a user sees them, labelled when they rest on estimates."""
        return format_cycles(self.cycles, self.is_estimate)


def format_cycles(cycles: float, estimate: bool = True) -> str:
    """Cycles with the precision they have: an estimate in whole cycles, marked "~" and
    labelled; a sum of published latencies as it is."""
    return f"~{cycles:.0f} cycles (estimate)" if estimate else f"{cycles:g} cycles"


def is_estimate_source(source: str) -> bool:
    """Whether a CoreProfile source marks its number as an estimate."""
    return source.startswith(_EST)


def _cost_key(insn: Insn, lse_execution: str) -> str:
    """The CoreProfile key an instruction is priced with."""
    if insn.cls != "lse_atomic":
        return insn.cls
    if lse_execution == "auto":  # the v6.18 rationale: st* tends to go far, ld* near
        lse_execution = "far" if insn.text.startswith("st") else "near"
    return "lse_" + lse_execution


def insn_cost(insn: Insn, profile: CoreProfile, lse_execution: str = "auto") -> float:
    """Cycles of one instruction under `profile`."""
    return profile.costs[_cost_key(insn, lse_execution)]


def op_cost(seq: OpSequence, core: str | CoreProfile = DEFAULT_CORE, *,
            lse_execution: str = "auto", resched_probability: float | None = None) -> OpCost:
    """Cost of one op: sum of instruction costs + P(resched) x resched_cost.

    lse_execution: "near", "far", or "auto" (STADD/STCLR/STSET far, load atomics near,
    as the v6.18 commit describes "many microarchitecture implementations").
    """
    _choose("lse_execution", lse_execution, LSE_EXECUTION)
    profile = core_profile(core)
    p = profile.resched_probability if resched_probability is None else resched_probability
    if not 0 <= p <= 1:
        raise ValueError(f"resched_probability {p} must be in [0, 1]")
    by_part: dict[str, float] = {}
    keys: list[str] = []
    for insn in seq.insns:
        key = _cost_key(insn, lse_execution)
        keys.append(key)
        by_part[insn.part] = by_part.get(insn.part, 0.0) + profile.costs[key]
    resched = p * (profile.resched_cost + profile.costs["call"]) if seq.resched else 0.0
    estimated = [k for k in dict.fromkeys(keys) if is_estimate_source(profile.sources.get(k, ""))]
    if resched and is_estimate_source(profile.resched_source):
        estimated.append("resched")
    return OpCost(seq, profile.name, sum(by_part.values()), resched, by_part, tuple(estimated))


@dataclass(frozen=True)
class SchemeVariant:
    """One column of a comparison: scheme x atomics under one preemption model."""

    scheme: str
    atomics: str

    @property
    def label(self) -> str:
        return f"{self.scheme}-{self.atomics}"


DEFAULT_VARIANTS = (SchemeVariant("today", "lse"), SchemeVariant("today", "llsc"),
                    SchemeVariant("local", "lse"), SchemeVariant("local", "llsc"))


def ops_table(ops: tuple[str, ...] = OPS, sizes: tuple[int, ...] | None = None, *,
              flavour: str = "this_cpu", preempt: str = DEFAULT_PREEMPT,
              kernel: str = DEFAULT_KERNEL, core: str | CoreProfile = DEFAULT_CORE,
              lse_execution: str = "auto", variants: tuple[SchemeVariant, ...] = DEFAULT_VARIANTS,
              local: LocalScheme = DEFAULT_LOCAL_SCHEME,
              resched_probability: float | None = None, vhe: bool = DEFAULT_VHE) -> pd.DataFrame:
    """One row per op x size x variant: instruction count and cycles (whole bracket and
    offset parts too). `estimate` says whether the cycles rest on estimated class costs
    (`estimated` names them); the numbers are kept unrounded for arithmetic."""
    rows = []
    for op in ops:
        for size in (sizes_for(op) if sizes is None else sizes):
            if size not in sizes_for(op):
                continue
            for v in variants:
                seq = op_sequence(op, size, flavour=flavour, scheme=v.scheme, atomics=v.atomics,
                                  preempt=preempt, kernel=kernel, local=local, vhe=vhe)
                c = op_cost(seq, core, lse_execution=lse_execution,
                            resched_probability=resched_probability)
                rows.append({"op": op, "size": size, "flavour": flavour, "scheme": v.scheme,
                             "atomics": v.atomics, "variant": v.label, "preempt": preempt,
                             "insns": len(seq.insns), "cycles": c.cycles,
                             "bracket_cycles": c.by_part.get("bracket", 0.0) + c.resched,
                             "offset_cycles": c.by_part.get("offset", 0.0),
                             "estimate": c.is_estimate, "estimated": ", ".join(c.estimated),
                             "unknown": ", ".join(seq.unknown)})
    return pd.DataFrame(rows)


def cost_lookup(core: str | CoreProfile = DEFAULT_CORE, *, flavour: str = "this_cpu",
                preempt: str = DEFAULT_PREEMPT, kernel: str = DEFAULT_KERNEL,
                lse_execution: str = "auto", variants: tuple[SchemeVariant, ...] = DEFAULT_VARIANTS,
                local: LocalScheme = DEFAULT_LOCAL_SCHEME,
                resched_probability: float | None = None, vhe: bool = DEFAULT_VHE
                ) -> pd.DataFrame:
    """Cycles per (op, size) (rows) and variant label (columns), for vectorised replay."""
    table = ops_table(flavour=flavour, preempt=preempt, kernel=kernel, core=core,
                      lse_execution=lse_execution, variants=variants, local=local,
                      resched_probability=resched_probability, vhe=vhe)
    return table.pivot_table(index=["op", "size"], columns="variant", values="cycles",
                             sort=False)[[v.label for v in variants]]
