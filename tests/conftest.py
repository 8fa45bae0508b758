"""Command-line options and the import path shared by every test suite."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.append(_ROOT)  # ``tests.support`` imports however pytest is launched (``pytest`` or ``python -m pytest``)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stratacache")
    group.addoption(
        "--redis-url",
        default=None,
        metavar="URL",
        help=(
            "use this running Redis or Valkey server as the shared server of its kind (the redis_url fixture) "
            "instead of starting one; tests that kill, pause or need TLS, Sentinel or Cluster still start their own"
        ),
    )
