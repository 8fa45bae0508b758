"""Counters and their frozen snapshots (Prometheus and OpenTelemetry exporters arrive in later releases)."""
