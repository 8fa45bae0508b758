"""``python -m stratacache.cli``: the ``stratacache`` command."""

from stratacache.cli import main

main()
