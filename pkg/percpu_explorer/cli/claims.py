"""`claims`: the reviewer's checklist, every claim of the RFC series evaluated by the models."""

from __future__ import annotations

import argparse

from ..claims import FORMATS, claims_table
from .common import add_format, add_kernel_option, check_format


def cmd_claims(args: argparse.Namespace) -> str:
    check_format(args.format, FORMATS)
    return claims_table(args.kernel, args.format)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """`claims`."""
    p = sub.add_parser("claims", help="the reviewer's checklist: every claim of the series")
    add_kernel_option(p)
    add_format(p, FORMATS)
    p.set_defaults(func=cmd_claims)
