"""Fault scenarios of the Redis tier, measured against real local servers (``python -m benchmarks.faults``).

Every scenario starts its own ``redis-server`` on 127.0.0.1 (``tests/support/servers.py``), injects one fault
(SIGKILL, SIGSTOP, a blackholing or delaying ``FaultProxy``, ``CLIENT KILL``), and reports its figures with a
PASS/FAIL against the bound the project set for it. ``docs/faults.md`` explains each scenario and shows the table.

Not a test suite: the integration tests (``tests/integration/test_redis_resilience.py``) assert "no hang" bounds
with wide margins; this package measures the actual figures and writes them to ``benchmarks/results/faults/``.
"""
