"""The ``stratacache`` command line, on typer and rich (``cli`` extra).

typer and rich are imported by this package and nowhere else in stratacache. Without them, ``stratacache`` prints
how to install the extra and exits with status 2. Each command lives in its own module; this one assembles them.

Exit codes (every command): 0 success, 1 the command failed, 2 bad usage or a missing extra, 3 a tier could not be
reached, 4 ``doctor`` found errors, 130 interrupted.
"""

from __future__ import annotations

import sys
from typing import NoReturn

try:
    import rich
    import typer
except ImportError as exc:  # pragma: no cover - exercised by installs without the cli extra
    _IMPORT_ERROR: ImportError | None = exc
else:
    _IMPORT_ERROR = None
    del rich

__all__ = ["main", "make_app"]

_INSTALL_HINT = "the stratacache command line needs typer and rich: install stratacache[cli]"
_EXIT_USAGE = 2


def make_app() -> typer.Typer:
    """The typer application (``stratacache --help``).

    Raises:
        ImportError: typer or rich is not installed.
    """
    if _IMPORT_ERROR is not None:
        raise _IMPORT_ERROR
    from stratacache.cli.demo import demo
    from stratacache.cli.doctor import doctor
    from stratacache.cli.ops import inspect_command, invalidate_command, stats_command, top_command, warm_command
    from stratacache.cli.simulate import simulate_command

    app = typer.Typer(
        name="stratacache",
        help="stratacache: a correct-first multi-tier cache. Try `stratacache demo`.",
        add_completion=False,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root() -> None:
        """stratacache: a correct-first multi-tier cache."""

    app.command("demo")(demo)
    app.command("simulate")(simulate_command)
    app.command("doctor")(doctor)
    app.command("stats")(stats_command)
    app.command("inspect")(inspect_command)
    app.command("invalidate")(invalidate_command)
    app.command("top")(top_command)
    app.command("warm")(warm_command)
    return app


def _missing_extra() -> NoReturn:
    sys.stderr.write(_INSTALL_HINT + "\n")
    raise SystemExit(_EXIT_USAGE)


def main() -> None:
    """Console entry point of ``stratacache``."""
    try:
        app = make_app()
    except ImportError:
        _missing_extra()
    app()
