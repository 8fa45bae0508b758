"""Sans-I/O core: pure functions over frozen data, plus the async engine source (``engine.py``).

No module here except ``engine`` may import ``asyncio``, ``threading``, ``socket`` or ``sqlite3``
(``tests/unit/test_sans_io.py`` enforces it).
"""
