"""Counters, their snapshots, and the ways out of the process.

Prometheus (``prometheus``), OpenTelemetry (``otel``), the ASGI ``/metrics`` app (``asgi``), reading endpoints back
(``scrape``), the sampled access log (``accesslog``) and per-tenant counts (``tenants``).
"""
