"""`percpu-explorer`: the model from the command line.

Every subcommand builds a `KernelConfig` from the same options, asks the model
for data and prints it as a table, CSV or JSON. A bad value exits with status 2
and one line that names it and the valid choices.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import pandas as pd

from ..kernel import (
    DEFAULT_KERNEL,
    DEFAULT_UNIT_SIZE,
    KASAN_MODES,
    RAM_BASE,
    KernelConfig,
    build_first_chunk,
    compute_layout,
    configs_table,
    first_chunk_va,
    fmt_addr,
    format_size,
    format_walk,
    layout_table,
    layout_to_dict,
    parse_addr,
    parse_size,
    pgtable_cost,
    pgtable_cost_summary,
    phys_to_virt,
)
from ..percpu import DEFAULT_STATIC_SIZE

PROG = "percpu-explorer"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise SystemExit(_fail(message))


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """The options that make a KernelConfig (shared by every subcommand)."""
    g = parser.add_argument_group("kernel configuration")
    g.add_argument("--page-size", default="4K", help="4K, 16K or 64K (default 4K)")
    g.add_argument("--va-bits", type=int, default=48, help="CONFIG_ARM64_VA_BITS (default 48)")
    g.add_argument("--vabits-actual", type=int, default=None,
                   help="VA bits of the hardware for a 52-bit kernel (default: VA_BITS)")
    g.add_argument("--kasan", default="none", help=f"one of {', '.join(KASAN_MODES)}")
    g.add_argument("--kernel", default=DEFAULT_KERNEL,
                   help=f"kernel version, e.g. 6.1, 6.8, 6.12.117 (default {DEFAULT_KERNEL})")
    g.add_argument("--nr-cpus", type=int, default=512, help="CONFIG_NR_CPUS (default 512)")
    g.add_argument("--local-percpu", action="store_true",
                   help="apply RFC patch 02/11 (Global and Local Percpu areas)")
    for name, kconfig in (("kvm", "CONFIG_KVM"), ("kpti", "CONFIG_UNMAP_KERNEL_AT_EL0"),
                          ("ghes", "CONFIG_ACPI_APEI_GHES"), ("sdei", "CONFIG_ARM_SDE_INTERFACE"),
                          ("relocatable", "CONFIG_RELOCATABLE")):
        g.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=True,
                       help=f"{kconfig} (fixmap slots; default on)")
    g.add_argument("--btmap-extra-page", action=argparse.BooleanOptionalAction, default=None,
                   help="NR_FIX_BTMAPS = SZ_256K/PAGE_SIZE + 1 (default: follows --kernel)")


def config_from_args(args: argparse.Namespace) -> KernelConfig:
    return KernelConfig(
        page_size=args.page_size,
        va_bits=args.va_bits,
        vabits_actual=args.vabits_actual,
        kasan=args.kasan,
        kernel=args.kernel,
        nr_cpus=args.nr_cpus,
        local_percpu=args.local_percpu,
        kvm=args.kvm,
        kpti=args.kpti,
        ghes=args.ghes,
        sdei=args.sdei,
        relocatable=args.relocatable,
        btmap_extra_page=args.btmap_extra_page,
    )


def _add_format(parser: argparse.ArgumentParser, choices: Sequence[str]) -> None:
    parser.add_argument("--format", default=choices[0],
                        help=f"output format: {', '.join(choices)} (default {choices[0]})")


def _check_format(value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"format {value!r} is unknown; choose one of {', '.join(choices)}")


# --- layout ----------------------------------------------------------------------------

LAYOUT_FORMATS = ("table", "csv", "json")


def cmd_layout(args: argparse.Namespace) -> str:
    _check_format(args.format, LAYOUT_FORMATS)
    layout = compute_layout(config_from_args(args))
    if args.format == "json":
        return json.dumps(layout_to_dict(layout), indent=2)
    table = layout_table(layout)
    if args.format == "csv":
        out = table.assign(
            start=table["start"].map(fmt_addr), end=table["end"].map(_fmt_end),
            last=table["last"].map(fmt_addr),
        )
        return out.to_csv(index=False).rstrip("\n")
    lines = [f"arm64 kernel {layout.config.kernel}, {layout.config.label()}"
             + (", RFC local percpu (patch 02/11)" if layout.config.local_percpu else ""), ""]
    lines.append(f"  {'Start':<20}{'End':<20}{'Size':>8}\t\tUse")
    lines.append("  " + "-" * 71)
    for row in table.itertuples():
        mark = "   <- problem" if row.problem else ""
        lines.append(f"  {fmt_addr(row.start):<20}{fmt_addr(row.last):<20}"
                     f"{row.size_text:>8}\t\t{row.use}{mark}")
    lines += _findings("Problems", layout.problems) + _findings("Warnings", layout.warnings)
    if not layout.problems:
        lines += ["", "No problems: the layout is sane."]
    return "\n".join(lines)


def _fmt_end(end: int) -> str:
    return "0x10000000000000000" if end == 1 << 64 else fmt_addr(end)


def _findings(title: str, findings: Sequence[Any]) -> list[str]:
    if not findings:
        return []
    return ["", f"{title}:"] + [f"  - [{f.code}] {f.message}" for f in findings]


# --- configs ---------------------------------------------------------------------------

def cmd_configs(args: argparse.Namespace) -> str:
    _check_format(args.format, LAYOUT_FORMATS)
    kasan = (args.kasan,) if args.kasan else KASAN_MODES
    frame = configs_table(args.kernel, kasan=kasan)
    if args.format == "json":
        return frame.to_json(orient="records", indent=2)
    if args.format == "csv":
        return frame.to_csv(index=False).rstrip("\n")
    lines = [f"Every valid configuration of kernel {frame['kernel'].iloc[0]}: "
             "mainline vmalloc vs RFC patch 02/11", ""]
    header = (f"{'config':<28}{'PGDIR':>7}{'2*PGDIR':>9}{'vmalloc':>10}"
              f"{'patched':>10}{'lost':>9}  patched layout")
    lines += [header, "-" * len(header)]
    for row in frame.itertuples():
        patched = "n/a" if row.PERCPU_SIZE is None or pd.isna(row.PERCPU_SIZE) else None
        verdict = row.patched_problems if patched else (
            "sane" if row.patched_sane else f"BROKEN ({row.patched_problems})")
        lines.append(
            f"{row.config:<28}{format_size(row.PGDIR_SIZE):>7}"
            f"{patched or format_size(int(row.PERCPU_SIZE)):>9}"
            f"{format_size(row.vmalloc_mainline):>10}"
            f"{patched or _vm(row.vmalloc_patched, row.patched_problems):>10}"
            f"{patched or _lost(row.vmalloc_lost):>9}  {verdict}")
    return "\n".join(lines)


def _vm(size: Any, problems: str) -> str:
    return "negative" if "vmalloc-empty" in problems else format_size(int(size))


def _lost(lost: Any) -> str:
    return "-" if lost is None or pd.isna(lost) else format_size(int(lost))


# --- walk / pgtables -------------------------------------------------------------------

PGTABLE_FORMATS = ("table", "json")


def _unit_size(args: argparse.Namespace) -> int:
    size = parse_size(args.unit_size)
    if size <= 0:
        raise ValueError(f"unit size {args.unit_size!r} must be positive, e.g. 128K")
    return size


def cmd_walk(args: argparse.Namespace) -> str:
    _check_format(args.format, PGTABLE_FORMATS)
    cfg = config_from_args(args)
    va = parse_addr(args.address)
    kpt = build_first_chunk(cfg, unit_size=_unit_size(args))
    walk = kpt.walk(args.cpu, va)
    if args.format == "json":
        steps = [{**s.__dict__, "table_pa": fmt_addr(s.table_pa), "entry_pa": fmt_addr(s.entry_pa),
                  "descriptor": fmt_addr(s.descriptor),
                  "next_pa": None if s.next_pa is None else fmt_addr(s.next_pa)}
                 for s in walk.steps]
        return json.dumps({"config": cfg.to_dict(), "cpu": walk.cpu, "va": fmt_addr(walk.va),
                           "pa": None if walk.pa is None else fmt_addr(walk.pa),
                           "fault_level": walk.fault_level, "mapping_size": walk.mapping_size,
                           "root_pa": fmt_addr(walk.root_pa), "ttbr1": fmt_addr(walk.ttbr1),
                           "steps": steps}, indent=2)
    head = [f"arm64 kernel {cfg.kernel}, {cfg.label()}, {kpt.nr_cpus} CPUs, "
            + ("per-CPU roots (RFC patches 01-02/11)" if cfg.local_percpu
               else "one shared root (mainline)")]
    unit = -(-_unit_size(args) // cfg.page_size) * cfg.page_size
    head.append(f"first chunk ({format_size(unit)} per CPU): CPU N's unit in the linear "
                f"map at {fmt_addr(phys_to_virt(kpt, RAM_BASE))} + N * {format_size(unit)}")
    if cfg.local_percpu:
        local, glob = first_chunk_va(kpt, unit)
        head.append(f"  local (this_cpu) {fmt_addr(local)}-{fmt_addr(local + unit)}; "
                    f"global {fmt_addr(glob)} + N * {format_size(unit)}")
    return "\n".join([*head, "", format_walk(walk)])


def cmd_pgtables(args: argparse.Namespace) -> str:
    _check_format(args.format, PGTABLE_FORMATS)
    cfg = config_from_args(args)
    unit = _unit_size(args)
    cost = pgtable_cost(cfg, unit_size=unit)
    summary = pgtable_cost_summary(cost)
    if args.format == "json":
        return json.dumps({"config": cfg.replace(local_percpu=False).to_dict(),
                           "nr_cpus": cfg.nr_cpus, "unit_size": unit,
                           "levels": cost.to_dict(orient="records"),
                           "summary": summary.__dict__},
                          indent=2)
    lines = [f"Page-table memory of the percpu first chunk: {cfg.label()}, "
             f"{cfg.nr_cpus} CPUs, {format_size(unit)} per CPU", ""]
    header = f"{'model':<10}{'level':<7}{'shared':>8}{'private':>9}{'per CPU':>9}{'bytes':>10}"
    lines += [header, "-" * len(header)]
    for row in cost.itertuples():
        lines.append(f"{row.model:<10}{row.level:<7}{row.shared_pages:>8}{row.private_pages:>9}"
                     f"{row.private_per_cpu:>9.2f}{format_size(int(row.bytes)):>10}")
    lines += ["",
              f"mainline: {summary.mainline_pages} pages "
              f"({format_size(summary.mainline_bytes)}); patched: "
              f"{summary.patched_pages} pages ({format_size(summary.patched_bytes)}); "
              f"extra {format_size(summary.extra_bytes)}"]
    return "\n".join(lines)


# --- capture / compare (percpu_explorer.captures, percpu_explorer.qemu) ---------------

def add_capture_options(parser: argparse.ArgumentParser) -> None:
    """Options of `capture`: where from (--qemu or --local), the boot, the output."""
    from ..captures import DEFAULT_KERNEL_PACKAGE, DEFAULT_WORK, QemuPlan

    plan = QemuPlan()
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--qemu", action="store_true",
                       help="boot Debian's arm64 kernel under qemu-system-aarch64")
    where.add_argument("--local", action="store_true",
                       help="read this machine's files (arm64, as root)")
    parser.add_argument("--out", required=True, help="bundle folder to write")
    parser.add_argument("--cpu", default=plan.cpu,
                        help="QEMU -cpu: max (52-bit VA, LPA2) or e.g. cortex-a72 (48-bit)")
    parser.add_argument("--smp", type=int, default=plan.smp, help="QEMU -smp CPU count")
    parser.add_argument("--memory", type=int, default=plan.memory_mb, help="guest MiB")
    parser.add_argument("--kaslr", action=argparse.BooleanOptionalAction, default=True,
                        help="boot with KASLR (--no-kaslr adds nokaslr)")
    parser.add_argument("--cgroups", type=int, default=plan.cgroups,
                        help="memory cgroups the workload creates and removes (0: none)")
    parser.add_argument("--kernel-package", default=DEFAULT_KERNEL_PACKAGE,
                        help="Debian arm64 kernel package to fetch")
    parser.add_argument("--kernel-image", default=None,
                        help="a locally built arm64 Image instead of the package")
    parser.add_argument("--kernel-config", default=None, help=".config of --kernel-image")
    parser.add_argument("--rebuild", action="store_true",
                        help="first rebuild the package's kernel from Debian's linux-source with "
                             "CONFIG_PTDUMP_DEBUGFS and CONFIG_PERCPU_STATS (about half an hour)")
    parser.add_argument("--timeout", type=int, default=plan.timeout_s,
                        help="seconds the boot may take")
    parser.add_argument("--work", default=str(DEFAULT_WORK), help="scratch folder")


def cmd_capture(args: argparse.Namespace) -> str:
    from pathlib import Path

    from ..captures import CaptureError, QemuPlan, capture_local, capture_qemu, save_bundle

    try:
        if args.local:
            bundle = capture_local(progress=lambda m: print(m, file=sys.stderr))
        else:
            plan = QemuPlan(
                cpu=args.cpu, smp=args.smp, memory_mb=args.memory, kaslr=args.kaslr,
                cgroups=args.cgroups, timeout_s=args.timeout, kernel_package=args.kernel_package,
                kernel_image=Path(args.kernel_image) if args.kernel_image else None,
                kernel_config=Path(args.kernel_config) if args.kernel_config else None,
                rebuild=args.rebuild)
            bundle = capture_qemu(plan, Path(args.work),
                                  progress=lambda m: print(m, file=sys.stderr))
    except CaptureError as exc:
        raise ValueError(f"capture failed: {exc}") from None
    folder = save_bundle(bundle, args.out)
    absent = bundle.meta.get("absent") or []
    return (f"saved capture bundle {folder} ({', '.join(sorted(bundle.texts))})"
            + (f"; absent: {', '.join(absent)}" if absent else ""))


def cmd_compare(args: argparse.Namespace) -> str:
    from ..captures import compare, format_comparison, load_bundle

    _check_format(args.format, LAYOUT_FORMATS)
    try:
        result = compare(load_bundle(args.bundle))
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
    rows = result.layout_rows.assign(
        model=result.layout_rows["model"].map(_capture_value),
        real=result.layout_rows["real"].map(_capture_value))
    if args.format == "json":
        return rows.to_json(orient="records", indent=2)
    if args.format == "csv":
        return rows.to_csv(index=False).rstrip("\n")
    return format_comparison(result)


def _capture_value(value: Any) -> str | None:
    from ..captures import format_value

    return None if value is None or pd.isna(value) else format_value(value)


# --- percpu allocator ----------------------------------------------------------------------

def _percpu_options(p: argparse.ArgumentParser, *, static_required: bool) -> None:
    g = p.add_argument_group("first chunk (pcpu_build_alloc_info)")
    g.add_argument("--static-size", type=int, required=static_required,
                   default=None if static_required else DEFAULT_STATIC_SIZE,
                   help="bytes of DEFINE_PER_CPU variables (__per_cpu_end - __per_cpu_start)"
                   + ("" if static_required
                      else f"; default {DEFAULT_STATIC_SIZE}, Debian's 6.12 arm64"))
    g.add_argument("--reserved-size", type=int, default=None,
                   help="reserved chunk bytes (default PERCPU_MODULE_RESERVE, 8K)")
    g.add_argument("--dyn-size", type=int, default=None,
                   help="dynamic reserve bytes (default PERCPU_DYNAMIC_RESERVE, 28K)")


def _first_chunk_setup(args: argparse.Namespace) -> tuple[Any, Any]:
    from ..percpu import PercpuAllocator, build_alloc_info

    cfg = config_from_args(args)
    ai = build_alloc_info(args.static_size, nr_cpus=cfg.nr_cpus, page_size=cfg.page_size,
                          reserved_size=args.reserved_size, dyn_size=args.dyn_size)
    return ai, PercpuAllocator(ai, cfg=cfg)


FIRST_CHUNK_FORMATS = ("text", "json")


def cmd_first_chunk(args: argparse.Namespace) -> str:
    from ..percpu import boot_lines

    _check_format(args.format, FIRST_CHUNK_FORMATS)
    ai, alloc = _first_chunk_setup(args)
    if args.format == "text":
        return "\n".join(boot_lines(ai))
    probe_base = alloc.vm.get_vm_areas(alloc.group_offsets, alloc.group_sizes, ai.atom_size)
    data: dict[str, Any] = {
        "config": alloc.cfg.to_dict(),
        "boot_lines": boot_lines(ai),
        "static_size": ai.static_size, "reserved_size": ai.reserved_size,
        "dyn_size": ai.dyn_size, "unit_size": ai.unit_size, "atom_size": ai.atom_size,
        "alloc_size": ai.alloc_size, "nr_units": ai.nr_units,
        "groups": [{"base_offset": g.base_offset, "cpu_map": list(g.cpu_map)}
                   for g in ai.groups],
        "unit_offsets": {str(cpu): off for cpu, off in sorted(alloc.unit_offsets.items())},
        "first_chunk": {"pcpu_base_addr": fmt_addr(alloc.base_addr),
                        "span": alloc.nr_units * ai.unit_size,
                        "where": "Global Percpu area" if alloc.local else "linear map"},
        "first_dynamic_chunk": {"base_addr": fmt_addr(probe_base),
                                "offset_from_base": probe_base - alloc.base_addr},
    }
    if alloc.local:
        data["first_chunk"]["local_base"] = fmt_addr(alloc.local_base)
        data["first_chunk"]["placement"] = alloc.placement.describe()
    return json.dumps(data, indent=2)


ALLOC_TRACE_FORMATS = ("text", "csv", "json")


def cmd_alloc_trace(args: argparse.Namespace) -> str:
    from ..percpu import read_requests, run_history

    _check_format(args.format, ALLOC_TRACE_FORMATS)
    requests = read_requests(args.file)
    _ai, alloc = _first_chunk_setup(args)
    decisions = run_history(alloc, requests)
    if args.format == "csv":
        return decisions.to_csv(index=False).rstrip("\n")
    if args.format == "json":
        return json.dumps({"decisions": json.loads(decisions.to_json(orient="records")),
                           "percpu_stats": alloc.stats()}, indent=2)
    shown = decisions.copy()
    for col in ("chunk_base", "ptr"):
        if col in shown:
            shown[col] = shown[col].map(lambda v: fmt_addr(int(v)) if pd.notna(v) else "")
    return (shown.to_string(index=False) + "\n\n" + alloc.percpu_stats_text()).rstrip("\n")


# --- ops (percpu_explorer.ops) -----------------------------------------------------------

OPS_FORMATS = ("table", "csv", "json")


def _ops_choices(value: str | None, choices: tuple[str, ...]) -> tuple[str, ...]:
    return choices if value is None else tuple(v.strip() for v in value.split(","))


def _ops_core(value: str) -> Any:
    """--core: a named profile, or a JSON file with a user profile."""
    from ..thiscpu import CORE_PROFILES, core_profile, core_profile_from_dict

    if value in CORE_PROFILES or not value.endswith(".json"):
        return core_profile(value)
    try:
        with open(value) as f:
            return core_profile_from_dict(json.load(f))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{value}: cannot read a core profile: {exc}") from None


def _add_ops_options(p: argparse.ArgumentParser) -> None:
    from ..thiscpu import DEFAULT_CORE, PREEMPT_MODELS

    p.add_argument("--preempt", default="full", help=f"one of {', '.join(PREEMPT_MODELS)}")
    p.add_argument("--kernel", default=DEFAULT_KERNEL, help="kernel version (default 7.1)")
    p.add_argument("--core", default=DEFAULT_CORE,
                   help="core profile: neoverse-n1, neoverse-v2, ampereone or a JSON file")
    p.add_argument("--lse-execution", default="auto", help="auto, near or far")
    p.add_argument("--resched-probability", type=float, default=None,
                   help="share of preempt_enable_notrace() calls that reschedule")
    p.add_argument("--local-offset", default="variable",
                   help="assumed local address formation: variable or constant")
    p.add_argument("--local-bracket", action="store_true",
                   help="assume the local scheme keeps today's preemption bracket")
    p.add_argument("--local-raw-cpu", action="store_true",
                   help="assume raw_cpu_*/__this_cpu_* also use the local address")


def _local_from_args(args: argparse.Namespace) -> Any:
    from ..thiscpu import LocalScheme

    return LocalScheme(offset=args.local_offset, bracket=args.local_bracket,
                       raw_cpu_local=args.local_raw_cpu)


def cmd_ops(args: argparse.Namespace) -> str:
    from ..thiscpu import ATOMICS, OPS, SCHEMES, op_cost, op_sequence, ops_table, sizes_for

    _check_format(args.format, OPS_FORMATS)
    core = _ops_core(args.core)
    local = _local_from_args(args)
    schemes = _ops_choices(args.scheme, SCHEMES)
    atomics = _ops_choices(args.atomics, ATOMICS[:2])
    if args.op is None:
        from ..thiscpu import SchemeVariant

        variants = tuple(SchemeVariant(s, a) for s in schemes for a in atomics)
        frame = ops_table(flavour=args.flavour, preempt=args.preempt, kernel=args.kernel,
                          core=core, lse_execution=args.lse_execution, variants=variants,
                          local=local, resched_probability=args.resched_probability)
        if args.format == "json":
            return frame.to_json(orient="records", indent=2)
        if args.format == "csv":
            return frame.to_csv(index=False).rstrip("\n")
        wide = frame.pivot_table(index=["op", "size"], columns="variant", values="cycles",
                                 sort=False)
        return (f"cycles per op, core {core.name}, {args.flavour}_*, preempt={args.preempt}, "
                f"kernel {args.kernel}\n{local.describe()}\n\n" + wide.round(2).to_string())
    if args.op not in OPS:
        raise ValueError(f"op {args.op!r} is unknown; choose one of {', '.join(OPS)}")
    sizes = sizes_for(args.op) if args.size is None else (args.size,)
    rows, blocks = [], [local.describe(), ""]
    for size in sizes:
        for scheme in schemes:
            for atom in atomics:
                seq = op_sequence(args.op, size, flavour=args.flavour, scheme=scheme,
                                  atomics=atom, preempt=args.preempt, kernel=args.kernel,
                                  local=local)
                cost = op_cost(seq, core, lse_execution=args.lse_execution,
                               resched_probability=args.resched_probability)
                rows.append({"op": args.op, "size": size, "flavour": args.flavour,
                             "scheme": scheme, "atomics": atom, "preempt": args.preempt,
                             "kernel": seq.kernel, "core": core.name,
                             "instructions": seq.texts(), "cycles": cost.cycles,
                             "resched_cycles": cost.resched, "notes": list(seq.notes)})
                blocks += [seq.format(), f"  cost on {core.name}: {cost.cycles:.2f} cycles "
                           f"(of which rare preempt_schedule path {cost.resched:.3f})", ""]
    if args.format == "json":
        return json.dumps(rows, indent=2)
    if args.format == "csv":
        frame = pd.DataFrame(rows).assign(instructions=lambda f: f["instructions"].map("; ".join),
                                          notes=lambda f: f["notes"].map("; ".join))
        return frame.to_csv(index=False).rstrip("\n")
    return "\n".join(blocks).rstrip("\n")


# --- interleave (percpu_explorer.interleave) -----------------------------------------------

def cmd_interleave(args: argparse.Namespace) -> str:
    from ..thiscpu import explore, op_pair, op_sequence, preemption_points

    _check_format(args.format, OPS_FORMATS)
    local = _local_from_args(args)
    if args.all:
        from ..thiscpu import safety_table

        table = safety_table(kernel=args.kernel, local=local)
        if args.format == "json":
            return table.to_json(orient="records", indent=2)
        if args.format == "csv":
            return table.to_csv(index=False).rstrip("\n")
        return ("Exhaustive verdicts of an op pair on 2 CPUs (<= 1 migration per task): "
                "PREEMPT_FULL without and PREEMPT_NONE with an interrupt on CPU0.\n"
                + local.describe() + "\n\n" + table.to_string(index=False))
    size = args.size if args.size is not None else (16 if args.op == "cmpxchg128" else 8)
    common = dict(flavour=args.flavour, scheme=args.scheme, atomics=args.atomics,
                  preempt=args.preempt, kernel=args.kernel, local=local)
    seq = op_sequence(args.op, size, **common)
    points = preemption_points(args.op, size, **common)
    result = explore(op_pair(args.op, size, irq=args.irq, **common))
    if args.format == "json":
        return json.dumps({"sequence": seq.texts(), "points": points.to_dict("records"),
                           "safe": result.safe, "verdicts": dict(result.verdicts),
                           "states": result.states,
                           "examples": {k: list(v) for k, v in result.examples.items()},
                           "assumption": local.describe()}, indent=2)
    if args.format == "csv":
        return points.to_csv(index=False).rstrip("\n")
    lines = [seq.format(), "", local.describe() if args.scheme == "local" else "",
             "Each point: (migrate) A is preempted there, B runs the same op on CPU0, A "
             "resumes on CPU1; (irq) an interrupt on CPU0 runs this_cpu_add(v, 100) there.",
             "Copies start at v@CPU0=0x10, v@CPU1=0x20 (cmpxchg family: both = --old).", "",
             points.to_string(index=False), "",
             "Exhaustive: tasks A (CPU0) and B (CPU1), one op each, every schedule with up to "
             "one migration per task" + (" and an interrupt on CPU0" if args.irq else "") + ":",
             "  " + result.summary()]
    for verdict, path in result.examples.items():
        if verdict != "ok":
            lines += [f"  a schedule giving '{verdict}':"] + [f"    {p}" for p in path]
    return "\n".join(lines)


# --- replay (percpu_explorer.replay, percpu_explorer.workloads) ---------------------------

REPLAY_FORMATS = ("table", "json")


def cmd_cost(args: argparse.Namespace) -> str:
    from ..thiscpu import (
        cost_to_dict,
        price_workload,
        read_workload,
        resolve_workload,
        reviewer_view,
    )

    _check_format(args.format, REPLAY_FORMATS)
    core = _ops_core(args.core)
    local = _local_from_args(args)
    workload = read_workload(args.workload, nr_cpus=args.nr_cpus)

    def progress(done: int, total: int) -> None:
        if args.progress:
            print(f"{PROG}: replayed {done}/{total} events", file=sys.stderr)

    result = price_workload(workload, core, preempt=args.preempt, kernel=args.kernel,
                         lse_execution=args.lse_execution, local=local,
                         resched_probability=args.resched_probability, progress=progress)
    view = reviewer_view(result, ghz=args.ghz, sys_share=args.sys_share)
    semantic = ({s: resolve_workload(workload, s, local=local, progress=progress)
                 for s in ("today", "local")} if args.semantic else None)
    if args.format == "json":
        return json.dumps(cost_to_dict(result, view, semantic), indent=2, default=str)
    t = result.totals
    lines = [f"{args.workload}: {result.events} this_cpu ops on {result.nr_cpus} CPUs over "
             f"{result.duration_ns} ns", "", "Assumptions:"]
    lines += [f"  - {a}" for a in result.settings.assumptions()]
    lines += ["", "Per scheme:",
              t[["variant", "cycles", "cycles_per_op", "saving_cycles", "saving_pct"]]
              .round(3).to_string(index=False), "", "Per op:",
              result.per_op.round(2).to_string(index=False), "", "Per CPU:",
              result.per_cpu.round(2).to_string(index=False), "", "Per variable:",
              result.per_variable.round(2).to_string(index=False), "", view.text()]
    if semantic:
        lines.append("")
        for name, sem in semantic.items():
            verdict = "final per-CPU values equal the reference" if sem.ok else "PROBLEMS"
            lines.append(f"Semantic replay ({name}): {verdict}")
            lines += [f"  - {p}" for p in sem.problems[:20]]
    return "\n".join(lines)


# --- claims (percpu_explorer.claims) ------------------------------------------------------

def cmd_claims(args: argparse.Namespace) -> str:
    from ..claims import FORMATS, claims_table

    _check_format(args.format, FORMATS)
    return claims_table(args.kernel, args.format)


# --- entry point -----------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("layout", help="the kernel VA layout of one configuration")
    add_config_options(p)
    _add_format(p, LAYOUT_FORMATS)
    p.set_defaults(func=cmd_layout)

    p = sub.add_parser("configs", help="every valid configuration, mainline vs patched")
    p.add_argument("--kernel", default=DEFAULT_KERNEL, help="kernel version (default 7.1)")
    p.add_argument("--kasan", default=None, help="only this KASAN mode (default: all)")
    _add_format(p, LAYOUT_FORMATS)
    p.set_defaults(func=cmd_configs)

    p = sub.add_parser("capture", help="capture a real arm64 kernel (QEMU or this machine)")
    add_capture_options(p)
    p.set_defaults(func=cmd_capture)

    p = sub.add_parser("compare", help="hold the model against a capture bundle")
    p.add_argument("bundle", help="capture bundle folder, e.g. data/captures/<name>")
    _add_format(p, LAYOUT_FORMATS)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("walk", help="walk one address through one CPU's page tables")
    p.add_argument("address", help="kernel virtual address, e.g. 0xfffffd7fffffe000")
    p.add_argument("--cpu", type=int, default=0, help="CPU whose root to walk (default 0)")
    p.add_argument("--unit-size", default=f"{DEFAULT_UNIT_SIZE >> 10}K",
                   help="first-chunk unit per CPU (default 128K)")
    add_config_options(p)
    _add_format(p, PGTABLE_FORMATS)
    p.set_defaults(func=cmd_walk)

    p = sub.add_parser("pgtables", help="page-table memory, mainline vs per-CPU roots")
    p.add_argument("--unit-size", default=f"{DEFAULT_UNIT_SIZE >> 10}K",
                   help="first-chunk unit per CPU (default 128K)")
    add_config_options(p)
    _add_format(p, PGTABLE_FORMATS)
    p.set_defaults(func=cmd_pgtables)
    p = sub.add_parser("first-chunk", help="the percpu first chunk: the kernel's boot lines")
    add_config_options(p)
    _percpu_options(p, static_required=True)
    _add_format(p, FIRST_CHUNK_FORMATS)
    p.set_defaults(func=cmd_first_chunk)

    p = sub.add_parser("alloc-trace", help="replay a percpu request history (CSV)")
    p.add_argument("file", help="CSV with op,id,size,align,reserved,atomic")
    add_config_options(p)
    _percpu_options(p, static_required=False)
    _add_format(p, ALLOC_TRACE_FORMATS)
    p.set_defaults(func=cmd_alloc_trace)

    p = sub.add_parser("ops", help="this_cpu_*() instruction sequences and costs per scheme")
    p.add_argument("--op", default=None, help="one op (default: a table of all ops)")
    p.add_argument("--size", type=int, default=None, help="bytes: 1, 2, 4, 8 (16: cmpxchg128)")
    p.add_argument("--flavour", default="this_cpu", help="this_cpu, __this_cpu or raw_cpu")
    p.add_argument("--scheme", default=None, help="today, local or both (default both)")
    p.add_argument("--atomics", default=None, help="lse, llsc or plain (default lse,llsc)")
    _add_ops_options(p)
    _add_format(p, OPS_FORMATS)
    p.set_defaults(func=cmd_ops)

    p = sub.add_parser("interleave", help="outcomes of an op at every preemption point")
    p.add_argument("--op", default="add", help="the op (default add)")
    p.add_argument("--size", type=int, default=None, help="bytes (default 8; 16: cmpxchg128)")
    p.add_argument("--flavour", default="this_cpu", help="this_cpu, __this_cpu or raw_cpu")
    p.add_argument("--scheme", default="today", help="today or local")
    p.add_argument("--atomics", default="lse", help="lse, llsc or plain")
    p.add_argument("--irq", action="store_true",
                   help="add an interrupt on CPU0 to the exhaustive search")
    p.add_argument("--all", action="store_true",
                   help="the verdict table of every op (claim 9; a few seconds)")
    _add_ops_options(p)
    _add_format(p, OPS_FORMATS)
    p.set_defaults(func=cmd_interleave)

    p = sub.add_parser("cost", aliases=["replay"],
                       help="cost of a this_cpu workload under each scheme")
    p.add_argument("workload", help="workload file (.csv or .parquet), see data/workloads/")
    p.add_argument("--nr-cpus", type=int, default=None, help="CPUs allowed in the file")
    p.add_argument("--semantic", action="store_true",
                   help="also replay values through the allocator and page tables")
    p.add_argument("--ghz", type=float, default=3.0, help="clock for the reviewer's view")
    p.add_argument("--sys-share", type=float, default=1.0,
                   help="share of the workload's CPU time spent in the kernel")
    p.add_argument("--progress", action="store_true", help="report progress on stderr")
    _add_ops_options(p)
    _add_format(p, REPLAY_FORMATS)
    p.set_defaults(func=cmd_cost)

    p = sub.add_parser("claims", help="the reviewer's checklist: every claim of the series")
    p.add_argument("--kernel", default=DEFAULT_KERNEL, help="kernel version (default 7.1)")
    _add_format(p, ("table", "json", "markdown"))
    p.set_defaults(func=cmd_claims)

    p = sub.add_parser("app", help="serve the notebooks as Voila dashboards (a classroom app)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    p.add_argument("--load-test", action="store_true",
                   help="instead: start the app on a free loopback port, run --sessions "
                        "concurrent visitors against it, report memory and update times")
    p.add_argument("--sessions", type=int, default=30, help="load test visitors (default 30)")
    p.add_argument("--drop", type=int, default=3,
                   help="load test visitors that leave in the middle of an update (default 3)")
    p.set_defaults(func=cmd_app)
    return parser


def cmd_app(args: argparse.Namespace) -> str:
    from ..ui import app

    if args.load_test:
        report = app.load_test(sessions=args.sessions, drop=args.drop,
                               host=app.check_host(args.host))
        ok = (report["sessions_updated"] == report["expected_updated"]
              and report["server_alive_after_drops"])
        if not ok:
            print(json.dumps(report, indent=2))
            raise SystemExit(_fail("load test: not every session got its figure, or the "
                                   "server did not survive the dropped sessions"))
        return json.dumps(report, indent=2)
    app.voila_command(args.host, args.port)  # bad --host/--port: ValueError naming it
    status = app.serve(args.host, args.port)
    if status not in (0, -signal.SIGTERM, -signal.SIGINT):
        raise SystemExit(_fail(f"the Voila server exited with status {status}"))
    return f"{PROG} app: stopped"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], str] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        output = func(args)
    except ValueError as exc:
        return _fail(str(exc))
    try:
        print(output)
    except BrokenPipeError:  # e.g. piped into head: stop quietly, as Unix tools do
        sys.stdout = open(os.devnull, "w")  # keeps the interpreter's exit flush quiet
    return 0
