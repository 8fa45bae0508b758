"""The consistency scenarios of issue 7, measured: ``python -m benchmarks.consistency [--out DIR] [--quick]``.

One module per scenario: ``interleavings`` (1: the stale-fill race forced 1,000 times per tier configuration),
``stampede`` (4: re-runs ``tests/integration/test_stampede.py``'s scenarios), ``checker`` (3: a randomized
two-process load checked by ``stratacache.testing.staleness``), ``xfetch`` (5: callers blocked at expiry with and
without early refresh) and ``failsafe`` (6: a loader failing for 30 s under ``fail_safe``). Scenario 2 is the
hypothesis state machine ``tests/property/test_fill_races.py``. See ``docs/consistency.md``.
"""
