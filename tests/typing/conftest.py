"""The ``api_*.py`` files are inputs for mypy, not tests: never collect or import them."""

collect_ignore_glob = ["api_*.py"]
