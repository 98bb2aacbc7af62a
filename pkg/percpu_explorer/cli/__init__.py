"""`percpu-explorer`: the model from the command line.

Every subcommand builds a `KernelConfig` from the same options, asks the model
for data and prints it as a table, CSV or JSON. A bad value exits with status 2
and one line that names it and the valid choices.

One module per group of subcommands: `layout` (layout, configs), `captures`
(capture, compare), `pgtables` (walk, pgtables), `percpu` (first-chunk,
alloc-trace), `thiscpu` (ops, interleave, cost alias replay), `claims` and `app`;
`common` holds the shared options, formats and errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from . import app, captures, claims, layout, percpu, pgtables, thiscpu
from .common import PROG, Parser, fail

__all__ = ["PROG", "build_parser", "main"]

# The subcommand groups in the order `--help` lists them.
_GROUPS = (layout, captures, pgtables, percpu, thiscpu, claims, app)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; each sets `func`, the command to run."""
    parser = Parser(prog=PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for group in _GROUPS:
        group.add_parsers(sub)
    return parser


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
        return fail(str(exc))
    try:
        print(output)
    except BrokenPipeError:  # e.g. piped into head: stop quietly, as Unix tools do
        sys.stdout = open(os.devnull, "w")  # keeps the interpreter's exit flush quiet
    return 0
