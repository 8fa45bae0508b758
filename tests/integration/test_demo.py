"""``stratacache demo``: the demo logic, its staleness checker (which must be able to fail) and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import stratacache as sc
from stratacache.demo import (
    DemoConfig,
    Item,
    StalenessTracker,
    StrataBackend,
    UncachedBackend,
    ZipfSampler,
    build_database,
    run_demo,
    run_phase,
)

if TYPE_CHECKING:
    from collections.abc import Callable

TOP_KEYS = {
    "stratacache_version",
    "config",
    "build_seconds",
    "uncached",
    "cached",
    "speedup",
    "p50_speedup",
    "p99_speedup",
    "db_query_reduction",
    "ok",
    "verdict",
}
PHASE_KEYS = {
    "name",
    "seconds",
    "requests",
    "db_queries",
    "writes",
    "stale_reads",
    "wrong_rows",
    "throughput",
    "p50_us",
    "p99_us",
    "mean_us",
    "hit_ratio",
    "tiers",
    "loads",
    "coalesced",
    "stale_served",
    "refreshes",
    "refresh_errors",
    "load_timeouts",
    "lock_waits",
    "loads_saved",
    "stale_examples",
}
TIER_KEYS = {"name", "hits", "misses", "hit_ratio", "sets", "deletes", "evictions", "errors", "entries", "bytes"}


# ------------------------------------------------------------------------------------------ naive caches


class NaiveDictCache:
    """The seed's pattern: a dict filled after the database read, with nothing guarding a concurrent fill.

    ``invalidate=False`` also drops the invalidation (the writer forgets to tell the cache).
    """

    def __init__(self, *, invalidate: bool) -> None:
        self.name = "naive"
        self._invalidate = invalidate
        self._data: dict[int, Item] = {}

    def read(self, row_id: int, load: Callable[[], Item]) -> Item:
        item = self._data.get(row_id)
        if item is None:
            item = load()
            self._data[row_id] = item  # stored even if the row was written and invalidated meanwhile
        return item

    def invalidate(self, row_id: int) -> None:
        if self._invalidate:
            self._data.pop(row_id, None)

    def stats(self) -> sc.Stats | None:
        return None


# ------------------------------------------------------------------------------------------ helpers


@pytest.fixture
def app_db(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    build_database(path, 500, seed=7, payload_bytes=32)
    return path


def _fetch(path: Path, row_id: int) -> Item:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        i, name, version, payload = conn.execute(
            "SELECT id, name, version, payload FROM items WHERE id = ?", (row_id,)
        ).fetchone()
    finally:
        conn.close()
    return {"id": i, "name": name, "version": version, "payload": payload}


def _write(path: Path, row_id: int) -> int:
    """Update a row and commit; return its new version."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        (version,) = conn.execute(
            "UPDATE items SET version = version + 1 WHERE id = ? RETURNING version", (row_id,)
        ).fetchone()
    finally:
        conn.close()
    return int(version)


def _forced_fill_race(app_db: Path, backend: NaiveDictCache | StrataBackend) -> StalenessTracker:
    """A reader's load reads row 1, then a write commits and is invalidated before the load returns.

    Forced with a hook inside the loader (no timing): the next read starts after the write completed, so it
    must return the new version.
    """
    tracker = StalenessTracker({1: 1})

    def racing_load() -> Item:
        item = _fetch(app_db, 1)  # the old row
        version = _write(app_db, 1)  # the writer commits...
        backend.invalidate(1)  # ...and invalidates...
        tracker.completed(1, version)  # ...and the write is complete
        return item

    due = tracker.due(1)
    first = backend.read(1, racing_load)
    assert not tracker.check(1, due, first["version"])  # overlapped the write: either version is fine
    due = tracker.due(1)
    assert due == 2
    second = backend.read(1, lambda: _fetch(app_db, 1))
    tracker.check(1, due, second["version"])
    return tracker


def _check_json(payload: dict[str, object], *, rows: int) -> None:
    assert set(payload) >= TOP_KEYS
    config = payload["config"]
    assert isinstance(config, dict)
    assert config["rows"] == rows
    for name in ("uncached", "cached"):
        phase = payload[name]
        assert isinstance(phase, dict)
        assert set(phase) >= PHASE_KEYS
        assert phase["name"] == name
        assert phase["requests"] > 0
    cached = payload["cached"]
    assert isinstance(cached, dict)
    assert [t["name"] for t in cached["tiers"]] == ["memory", "sqlite"]
    for tier in cached["tiers"]:
        assert set(tier) >= TIER_KEYS
    assert cached["stale_reads"] == 0
    assert cached["db_queries"] < cached["requests"]
    assert cached["loads_saved"] == cached["requests"] - cached["loads"]
    assert cached["refresh_errors"] == 0
    assert payload["config"]["stale_while_revalidate"] > 0
    assert payload["ok"] is True


# ------------------------------------------------------------------------------------------ the checker


def test_tracker_counts_only_reads_older_than_a_completed_write() -> None:
    tracker = StalenessTracker({1: 3})
    assert tracker.due(1) == 3
    assert tracker.due(2) == 0
    assert not tracker.check(1, 3, 3)
    assert not tracker.check(1, 3, 4)  # newer than due: a write in progress
    tracker.completed(1, 5)
    tracker.completed(1, 4)  # an older completion never moves the bar back
    assert tracker.due(1) == 5
    assert tracker.check(1, 5, 4)
    assert tracker.stale_reads == 1
    assert tracker.examples[0].row_id == 1
    assert tracker.examples[0].got == 4
    assert tracker.examples[0].due == 5


def test_checker_catches_the_unguarded_fill_race(app_db: Path) -> None:
    tracker = _forced_fill_race(app_db, NaiveDictCache(invalidate=True))
    assert tracker.stale_reads == 1


def test_stratacache_refuses_the_fill_race(app_db: Path, tmp_path: Path) -> None:
    with sc.Cache(sc.MemoryTier(), sc.SQLiteTier(tmp_path / "cache.db"), namespace="race") as cache:
        tracker = _forced_fill_race(app_db, StrataBackend(cache))
    assert tracker.stale_reads == 0


def test_checker_fails_a_cache_that_is_never_invalidated(app_db: Path) -> None:
    result = run_phase(
        app_db,
        NaiveDictCache(invalidate=False),
        duration=1.0,
        threads=2,
        sampler=ZipfSampler(500, 1.1, seed=3),
        seed=3,
        write_rate=200.0,
    )
    assert result.writes > 0
    assert result.stale_reads > 0
    assert result.stale_examples
    assert all(ex.got < ex.due for ex in result.stale_examples)


def test_uncached_phase_reads_the_database_every_time(app_db: Path) -> None:
    result = run_phase(
        app_db,
        UncachedBackend(),
        duration=0.5,
        threads=2,
        sampler=ZipfSampler(500, 1.1, seed=5),
        seed=5,
        write_rate=200.0,
    )
    assert result.requests > 0
    assert result.db_queries == result.requests
    assert result.stale_reads == 0
    assert result.wrong_rows == 0
    assert result.tiers == ()


class _Boom(UncachedBackend):
    def read(self, row_id: int, load: Callable[[], Item]) -> Item:
        raise KeyError(row_id)


def test_a_failing_reader_stops_the_phase_and_raises(app_db: Path) -> None:
    with pytest.raises(KeyError):
        run_phase(
            app_db,
            _Boom(),
            duration=60.0,  # bounded by the failure, not by the duration
            threads=2,
            sampler=ZipfSampler(500, 1.1, seed=1),
            seed=1,
            write_rate=10.0,
        )


def test_a_missing_database_fails_before_the_start(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        run_phase(
            tmp_path / "absent" / "app.db",
            UncachedBackend(),
            duration=60.0,
            threads=2,
            sampler=ZipfSampler(500, 1.1, seed=1),
            seed=1,
            write_rate=10.0,
        )


# ------------------------------------------------------------------------------------------ the demo


def test_demo_with_the_cache_has_no_stale_reads(tmp_path: Path) -> None:
    config = DemoConfig(rows=2000, duration=1.0, threads=4, write_rate=200.0, db_latency=0.0002, seed=11)
    result = run_demo(config, workdir=tmp_path)
    cached, uncached = result.cached, result.uncached
    assert cached.writes > 0
    assert cached.stale_reads == 0
    assert cached.wrong_rows == 0
    assert uncached.stale_reads == 0
    assert cached.requests > 0
    assert cached.db_queries < cached.requests
    assert cached.db_queries == cached.loads  # background refreshes' queries included
    assert cached.loads_saved == cached.requests - cached.loads
    assert cached.refresh_errors == 0
    assert uncached.db_queries == uncached.requests
    assert 0 < cached.hit_ratio <= 1
    assert [t.name for t in cached.tiers] == ["memory", "sqlite"]
    assert result.ok
    assert result.verdict().startswith("OK")
    _check_json(json.loads(json.dumps(result.to_dict())), rows=2000)
    assert list(tmp_path.iterdir()) == []  # the temporary files are gone


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rows": 5},
        {"threads": 0},
        {"duration": 0.0},
        {"duration": float("nan")},
        {"write_rate": -1.0},
        {"rows": True},
        {"ttl": 0.0},
        {"stale_while_revalidate": -1.0},
        {"early_refresh": float("inf")},
    ],
)
def test_bad_config_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        DemoConfig(**kwargs)  # type: ignore[arg-type]


def test_stale_serves_on_purpose_are_not_stale_reads(tmp_path: Path) -> None:
    """Expired rows served by stale-while-revalidate are counted apart; invalidated rows never are served.

    A TTL far shorter than the phase makes hot rows expire many times while the writer keeps invalidating them:
    the cache serves expired copies on purpose (and refreshes them in its background threads, whose loader calls
    reach the database on connections of their own), and the honest checker still finds no stale read.
    """
    config = DemoConfig(
        rows=300, duration=1.5, threads=4, write_rate=200.0, db_latency=0.0002, seed=13, ttl=0.05, early_refresh=1.0
    )
    result = run_demo(config, workdir=tmp_path)
    cached = result.cached
    assert cached.writes > 0
    assert cached.stale_served > 0
    assert cached.refreshes > 0
    assert cached.refresh_errors == 0
    assert cached.stale_reads == 0, cached.stale_examples
    assert cached.db_queries == cached.loads
    assert result.ok
    assert "served on purpose" in result.verdict()


def test_demo_without_a_policy_serves_nothing_stale(tmp_path: Path) -> None:
    config = DemoConfig(
        rows=300,
        duration=0.5,
        threads=2,
        write_rate=100.0,
        seed=17,
        ttl=0.05,
        stale_while_revalidate=0.0,
        early_refresh=0.0,
    )
    result = run_demo(config, workdir=tmp_path)
    assert result.cached.stale_served == 0
    assert result.cached.refreshes == 0
    assert result.ok


# ------------------------------------------------------------------------------------------ the CLI

import typer.testing as typer_testing  # noqa: E402 - make test installs the cli extra: a missing one fails


def test_cli_json_via_clirunner() -> None:
    from stratacache.cli import make_app

    result = typer_testing.CliRunner().invoke(make_app(), ["demo", "--json", "--duration", "1", "--rows", "2000"])
    assert result.exit_code == 0, result.output
    _check_json(json.loads(result.stdout), rows=2000)


def test_cli_report_shows_the_policy_counters() -> None:
    from stratacache.cli import make_app

    result = typer_testing.CliRunner().invoke(
        make_app(), ["demo", "--duration", "1", "--rows", "2000", "--ttl", "0.2"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "stale_while_revalidate 10 s, early_refresh 1" in out
    for label in ("stale reads", "stale serves on purpose", "background refreshes", "loader calls", "single-flight"):
        assert label in out
    assert "OK:" in out


def _command() -> list[str]:
    script = Path(sys.executable).with_name("stratacache")
    if script.exists():
        return [str(script)]
    found = shutil.which("stratacache")
    return [found] if found else [sys.executable, "-m", "stratacache.cli"]


@pytest.mark.parametrize("how", ["script", "module"])
def test_cli_json_via_subprocess(how: str) -> None:
    cmd = _command() if how == "script" else [sys.executable, "-m", "stratacache.cli"]
    proc = subprocess.run(
        [*cmd, "demo", "--json", "--duration", "1", "--rows", "2000"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    _check_json(json.loads(proc.stdout), rows=2000)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--rows", "5"], "--rows"),
        (["--threads", "0"], "--threads"),
        (["--duration", "abc"], "--duration"),
        (["--duration", "-1"], "--duration"),
        (["--rows", "many"], "--rows"),
        (["--ttl", "0"], "--ttl"),
        (["--stale-while-revalidate", "-1"], "--stale-while-revalidate"),
    ],
)
def test_cli_bad_options_give_a_clear_message(args: list[str], option: str) -> None:
    from stratacache.cli import make_app

    result = typer_testing.CliRunner().invoke(make_app(), ["demo", *args])
    assert result.exit_code == 2
    assert option in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_main_without_the_cli_extra(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import stratacache.cli

    monkeypatch.setattr(stratacache.cli, "_IMPORT_ERROR", ImportError("No module named 'typer'"))
    with pytest.raises(SystemExit) as exc_info:
        stratacache.cli.main()
    assert exc_info.value.code == 2
    assert "install stratacache[cli]" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ demo --redis


def _redis_demo(redis_url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_command(), "demo", "--redis", redis_url, "--duration", "4", "--rows", "5000", *extra],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_redis_demo_runs_two_processes_through_an_outage(redis_url: str) -> None:
    proc = _redis_demo(redis_url, "--json")
    assert proc.returncode in {0, 1}, proc.stderr  # 1: a read staler than the bounds (reported, not hidden)
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["processes"] == 2
    assert [p["index"] for p in doc["cached"]] == [0, 1]
    assert len({p["pid"] for p in doc["cached"]}) == 2
    # nothing raised to a caller, before, during or after the outage; no wrong row
    assert doc["errors"] == 0
    assert all(w["errors"] == 0 for w in doc["outage"]["windows"])
    assert all(p["errors"] == 0 and p["wrong_rows"] == 0 for p in doc["cached"] + doc["uncached"])
    assert doc["writers"]["cached"]["errors"] == 0
    assert doc["writers"]["cached"]["writes"] > 0
    # uncached reads are never stale; cached ones lag by the backplane's bound at most while Redis answers
    assert all(p["stale_reads"] == 0 for p in doc["uncached"])
    before, during, after = doc["outage"]["windows"]
    assert before["max_staleness"] <= doc["lag_bound"]
    assert doc["stale_reads"] == sum(w["stale_reads"] for w in doc["outage"]["windows"])
    # the L1s were kept coherent through Redis: messages from the writer reached both processes
    for p in doc["cached"]:
        assert p["backplane_received"] > 0
        assert p["loads"] <= p["db_queries"]  # refreshes' queries are counted too (none without a policy)
        assert p["stale_served"] == 0  # no LoadPolicy unless asked for (see run_redis_demo)
        assert [t["name"] for t in p["tiers"]] == ["memory", "redis"]
        assert p["db_queries"] < p["requests"]
    # the outage: every breaker opened and closed again, the database took the load meanwhile, and it recovered
    outage = doc["outage"]
    assert outage["ended"] - outage["began"] == pytest.approx(1.2, abs=0.2)
    for _proc, path in outage["breaker_paths"]:
        assert path[0] == "closed"
        assert "open" in path
        assert path[-1] == "closed"
    assert outage["detection"] is not None
    assert outage["recovery"] is not None
    assert during["requests"] > 0
    assert during["db_queries"] > 0
    assert after["requests"] > 0


def test_redis_demo_report(redis_url: str) -> None:
    proc = _redis_demo(redis_url)
    assert proc.returncode in {0, 1}, proc.stderr
    out = proc.stdout
    assert "stratacache demo --redis" in out
    assert "worker 1" in out
    assert "worker 2" in out
    assert "Injected outage" in out
    assert "errors raised to callers" in out
    assert "breaker, worker 1: closed -> open" in out
    for label in ("stale serves on purpose", "background refreshes", "loader calls", "saved by single-flight"):
        assert label in out
    assert any(line.startswith(("OK:", "FAIL:")) for line in out.splitlines())
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:6379/0", "bad --redis URL"),
        ("localhost:6379", "bad --redis URL"),
        ("redis://127.0.0.1:6379/99", "bad --redis URL"),
        ("unix:///tmp/redis.sock", "plain redis://host:port/db"),
        ("redis+cluster://127.0.0.1:7000", "plain redis://host:port/db"),
        ("redis://127.0.0.1:1/0", "cannot reach the Redis server at 127.0.0.1:1"),
    ],
)
def test_redis_demo_bad_url_is_one_line_and_fails(url: str, message: str) -> None:
    from stratacache.cli import make_app

    result = typer_testing.CliRunner().invoke(make_app(), ["demo", "--redis", url, "--duration", "1"])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert isinstance(result.exception, SystemExit)


def test_redis_demo_unreachable_server_via_subprocess() -> None:
    proc = subprocess.run(
        [*_command(), "demo", "--redis", "redis://127.0.0.1:1/0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "cannot reach the Redis server" in proc.stderr
    assert "Traceback" not in proc.stderr
