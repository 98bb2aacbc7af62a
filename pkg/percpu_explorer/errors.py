"""The error every entry point raises for a bad value from outside the model.

An `InputError` is a `ValueError` whose message is one line naming the value, where
it came from (an option such as `--nr-cpus`, a field such as `nr_cpus`, or a file
position `FILE:LINE:COLUMN`) and what is valid. The command line prints that line and
exits with status 2; the widgets show it in their panel and keep the previous figure.
This module imports nothing from the package, so every folder can use it.
"""

from __future__ import annotations

__all__ = ["InputError", "ProblemsError", "one_line", "shown", "where"]


def one_line(text: str) -> str:
    """`text` with its line breaks turned into "; " (a message is one line)."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def shown(value: object, limit: int = 60) -> str:
    """`repr(value)` for a message, cut to about `limit` characters ("...", and the length)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f"{len(value)} characters" if isinstance(value, str | bytes) else "long"
    return f"{text[:limit]}... ({size})"


def where(source: str, line: int | None = None, column: int | None = None) -> str:
    """`source:line:column` (as compilers print positions), the parts that are known."""
    text = str(source)
    if line is not None:
        text += f":{line}"
        if column is not None:
            text += f":{column}"
    return text


class InputError(ValueError):
    """A value the kernel's rules (or a file format) refuse, in one line.

    field: the name of what was wrong as the caller spells it (a KernelConfig field
    such as "nr_cpus"), so that a front end can name its own control or option instead.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(one_line(message))
        self.field = field


class ProblemsError(InputError):
    """Every problem found in one input (a file): `problems` lists them all, one line
    each; the message is the first, with how many more there are and what was not done."""

    def __init__(self, source: str, problems: list[str], *,
                 consequence: str = "nothing was read") -> None:
        self.source = source
        self.problems = [one_line(p) for p in problems] or [f"{source}: no data"]
        more = len(self.problems) - 1
        tail = (f" (and {more} more problem{'s' if more > 1 else ''} in this file; "
                f"{consequence})" if more else f" ({consequence})")
        super().__init__(self.problems[0] + tail)
