"""`percpu-explorer`: the model from the command line.

Every subcommand builds a `KernelConfig` from the same options, asks the model
for data and prints it as a table, CSV or JSON. A bad value exits with status 2
and one line that names it and the valid choices.

One module per group of subcommands: `layout` (layout, configs), `captures`
(capture, compare), `census` (census), `pgtables` (walk, pgtables), `percpu` (first-chunk,
alloc-trace), `thiscpu` (ops, interleave, cost alias replay), `claims` and `app`;
`common` holds the shared options, formats and errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from ..errors import InputError
from . import app, captures, census, claims, layout, percpu, pgtables, thiscpu
from .common import PROG, Parser, fail, write

__all__ = ["PROG", "build_parser", "main"]

# The subcommand groups in the order `--help` lists them.
_GROUPS = (layout, captures, census, pgtables, percpu, thiscpu, claims, app)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; each sets `func`, the command to run."""
    parser = Parser(prog=PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for group in _GROUPS:
        group.add_parsers(sub)
    return parser


def _naming_option(parser: argparse.ArgumentParser, args: argparse.Namespace,
                   exc: InputError) -> str:
    """The error's message, after `argument --option:` when the field it names is an
    option of the command (the model says `size 3 ...`, the user typed `--size 3`)."""
    message = str(exc)
    if not exc.field or message.startswith("argument "):
        return message
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = sub.choices.get(getattr(args, "command", None) or "")
    for action in command._actions if command is not None else ():
        if action.dest == exc.field and action.option_strings:
            return f"argument {max(action.option_strings, key=len)}: {message}"
    return message


def _names(group: object) -> list[str]:
    """The subcommands a group module adds, in the order it adds them."""
    probe = argparse.ArgumentParser(add_help=False)
    sub = probe.add_subparsers()
    group.add_parsers(sub)  # type: ignore[attr-defined]
    return [name for name in sub.choices if name != "replay"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], str] | None = getattr(args, "func", None)
    if func is None:
        commands = ", ".join(sub for group in _GROUPS for sub in _names(group))
        return fail(f"a command is required: one of {commands} (see {PROG} --help)")
    try:
        output = func(args)
    except InputError as exc:
        return fail(_naming_option(parser, args, exc))
    except ValueError as exc:  # every other refusal of the model: one line, status 2
        return fail(str(exc))
    try:
        write(sys.stdout, output)
    except BrokenPipeError:  # e.g. piped into head: stop quietly, as Unix tools do
        sys.stdout = open(os.devnull, "w")  # keeps the interpreter's exit flush quiet
    return 0
