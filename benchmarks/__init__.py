"""Benchmarks of stratacache beside peer caching libraries (``python -m benchmarks run ...``).

Not a test suite: it lives outside pytest's ``testpaths`` and asserts no timing thresholds.
"""
