"""What every ``stratacache`` command shares: exit codes, consoles, error output."""

from __future__ import annotations

import json
import sys
from typing import Any, Final, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

__all__ = [
    "EXIT_ERROR",
    "EXIT_FINDINGS",
    "EXIT_INTERRUPTED",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "fail",
    "print_json",
    "stderr",
]

EXIT_ERROR: Final = 1
"""The command failed (bad trace, stale reads in the demo, a key that is not cached...)."""
EXIT_USAGE: Final = 2
"""Bad arguments or a missing extra."""
EXIT_UNAVAILABLE: Final = 3
"""A tier could not be reached."""
EXIT_FINDINGS: Final = 4
"""``doctor`` found problems of severity error."""
EXIT_INTERRUPTED: Final = 130


def stderr() -> Console:
    """A console on standard error (messages, progress), so that standard output stays parseable."""
    return Console(stderr=True)


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print ``error: message`` on standard error and exit with ``code`` (never a traceback)."""
    stderr().print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def print_json(doc: Any) -> None:
    """Write ``doc`` as indented JSON on standard output (``--json``)."""
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
