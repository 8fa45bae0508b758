"""The invalidation journal: bounded, replayed in full, overflowing into one namespace bump."""

from __future__ import annotations

import pytest

from stratacache.errors import ConfigError
from stratacache.invalidation.journal import Journal


def test_records_keys_and_counters_once_each() -> None:
    j = Journal(limit=10)
    assert not j
    j.add_keys(["a", "b", "a"])
    j.add_gens(["ns", "ns\x00t"])
    replay = j.pending()
    assert replay.keys == ("a", "b")
    assert replay.gens == ("ns", "ns\x00t")
    assert not replay.overflowed
    assert j.recorded == 5
    j.done(replay)
    assert not j


def test_entries_recorded_during_a_replay_survive_it() -> None:
    j = Journal()
    j.add_keys(["a"])
    replay = j.pending()
    j.add_keys(["b"])
    j.done(replay)
    assert j.pending().keys == ("b",)


def test_overflow_collapses_into_a_namespace_bump() -> None:
    j = Journal(limit=3)
    j.add_keys(["a", "b"])
    j.add_gens(["g1", "g2"])
    assert j.overflowed
    j.add_keys(["c"])
    replay = j.pending()
    assert replay.overflowed
    assert replay.keys == ()
    j.done(replay)
    assert not j
    assert not j.overflowed


@pytest.mark.parametrize("limit", [0, -1, True, 1.5])
def test_bad_limit(limit: object) -> None:
    with pytest.raises(ConfigError):
        Journal(limit)  # type: ignore[arg-type]
