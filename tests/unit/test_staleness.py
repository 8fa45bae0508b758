"""``stratacache.testing.staleness``: the bounded-staleness rule, exactly, on hand-written histories."""

from __future__ import annotations

import random
import threading

import pytest

import stratacache.testing
from stratacache.testing import FakeClock, staleness


def test_reachable_as_an_attribute_of_stratacache_testing() -> None:
    assert stratacache.testing.staleness is staleness
    assert staleness.History is not None
    assert "staleness" in stratacache.testing.__all__


def test_an_empty_history_is_ok() -> None:
    report = staleness.History().check()
    assert report == staleness.Report(reads=0, misses=0, stale_reads=0, examples=(), max_staleness=0.0)
    assert report.ok


def test_a_read_of_the_newest_version_is_fresh() -> None:
    h = staleness.History()
    h.write_committed("k", 2, at=1.0)
    h.invalidation_done("k", 2, at=2.0)
    h.read("k", 2, 3.0, 4.0)
    h.read("k", 3, 3.0, 4.0)  # newer than anything invalidated: a write in progress
    report = h.check()
    assert (report.reads, report.stale_reads, report.writes, report.invalidations) == (2, 0, 1, 1)
    assert report.ok


def test_a_read_overlapping_the_invalidation_is_not_stale() -> None:
    h = staleness.History()
    h.invalidation_done("k", 2, at=5.0)
    h.read("k", 1, 4.0, 6.0)  # started before the invalidation returned
    h.read("k", 1, 5.0, 6.0)  # started at the very moment: not strictly after
    h.read("k", 1, 1.0, 2.0)  # long before
    assert h.check().stale_reads == 0


def test_a_read_starting_after_the_invalidation_and_returning_an_older_version_is_stale() -> None:
    h = staleness.History()
    h.write_committed("k", 2, at=4.0)
    h.invalidation_done("k", 2, at=5.0)
    h.read("k", 1, 7.5, 8.0)
    report = h.check()
    assert report.reads == 1
    assert report.stale_reads == 1
    assert not report.ok
    assert report.max_staleness == pytest.approx(2.5)
    assert report.examples == (
        staleness.StaleRead(
            key="k",
            version=1,
            newer_version=2,
            start=7.5,
            end=8.0,
            invalidated_at=5.0,
            committed_at=4.0,
            staleness=2.5,
        ),
    )


def test_staleness_counts_from_the_first_newer_invalidation() -> None:
    h = staleness.History()
    h.invalidation_done("k", 2, at=1.0)
    h.invalidation_done("k", 3, at=2.0)
    h.invalidation_done("k", 4, at=9.0)
    h.read("k", 2, 3.0, 3.5)  # v3 was invalidated at 2.0
    h.read("k", 1, 3.0, 3.5)  # v2 was invalidated at 1.0
    report = h.check()
    assert report.stale_reads == 2
    first, second = report.examples
    assert (first.version, first.newer_version, first.invalidated_at, first.staleness) == (2, 3, 2.0, 1.0)
    assert (second.version, second.newer_version, second.invalidated_at, second.staleness) == (1, 3, 1.0, 2.0)
    assert second.committed_at is None
    assert report.max_staleness == 2.0


def test_recording_order_does_not_matter() -> None:
    h = staleness.History()
    h.read("k", 1, 7.0, 8.0)  # recorded before the invalidation that makes it stale
    h.invalidation_done("k", 3, at=6.0)
    h.invalidation_done("k", 2, at=5.0)  # out of order, older version
    report = h.check()
    assert report.stale_reads == 1
    assert report.examples[0].newer_version == 3
    assert report.examples[0].invalidated_at == 5.0


def test_an_older_invalidation_later_does_not_lower_the_bar() -> None:
    h = staleness.History()
    h.invalidation_done("k", 5, at=1.0)
    h.invalidation_done("k", 4, at=2.0)
    h.read("k", 4, 3.0, 3.0)
    assert h.check().stale_reads == 1


def test_misses_are_counted_and_never_checked() -> None:
    h = staleness.History()
    h.invalidation_done("k", 9, at=1.0)
    h.read("k", None, 2.0, 3.0)
    report = h.check()
    assert (report.reads, report.misses, report.stale_reads) == (0, 1, 0)


def test_keys_are_independent() -> None:
    h = staleness.History()
    h.invalidation_done(("user", 1), 7, at=1.0)
    h.read(("user", 2), 1, 2.0, 3.0)  # another key: nothing invalidated
    h.read(("user", 1), 7, 2.0, 3.0)
    assert h.check().stale_reads == 0
    h.read(("user", 1), 6, 2.0, 3.0)
    report = h.check()
    assert report.stale_reads == 1
    assert report.examples[0].key == ("user", 1)


def test_examples_are_bounded_and_in_recording_order() -> None:
    h = staleness.History(max_examples=3)
    h.invalidation_done("k", 100, at=0.0)
    for i in range(50):
        h.read("k", i, 1.0 + i, 1.0 + i)
    report = h.check()
    assert report.stale_reads == 50
    assert [e.version for e in report.examples] == [0, 1, 2]
    assert report.max_staleness == 50.0
    assert staleness.History(max_examples=0).check().examples == ()


def test_check_leaves_the_history_as_it_is() -> None:
    h = staleness.History()
    h.invalidation_done("k", 2, at=1.0)
    h.read("k", 1, 2.0, 2.0)
    assert h.check() == h.check()
    h.read("k", 2, 3.0, 3.0)
    assert h.check().reads == 2


def test_reading_times_the_read_on_the_injected_clock() -> None:
    clock = FakeClock()
    h = staleness.History(clock=clock.monotonic)
    clock.advance(1)
    h.invalidation_done("k", 2)  # at = 1.0
    clock.advance(1)
    with h.reading("k") as r:
        assert r.start == 2.0
        clock.advance(3)
        r.version = 1
    assert r.end == 5.0
    with h.reading("k") as r:
        pass  # version left None: a miss

    def failing_read() -> None:
        with h.reading("k") as failed:
            failed.version = 1
            raise RuntimeError  # a failed read is not recorded

    with pytest.raises(RuntimeError):
        failing_read()
    report = h.check()
    assert (report.reads, report.misses, report.stale_reads) == (1, 1, 1)
    assert report.examples[0].start == 2.0
    assert report.examples[0].end == 5.0
    assert report.examples[0].staleness == 1.0
    assert h.now() == 5.0


def test_default_timestamps_come_from_the_clock() -> None:
    ticks = iter([10.0, 20.0])
    h = staleness.History(clock=lambda: next(ticks))
    h.write_committed("k", 2)
    h.invalidation_done("k", 2)
    h.read("k", 1, 25.0, 26.0)
    example = h.check().examples[0]
    assert (example.committed_at, example.invalidated_at) == (10.0, 20.0)


@pytest.mark.parametrize("version", [1.0, "1", True])
def test_versions_are_ints(version: object) -> None:
    h = staleness.History()
    with pytest.raises(TypeError, match="version"):
        h.read("k", version, 1.0, 2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="version"):
        h.invalidation_done("k", version)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="version"):
        h.write_committed("k", version)  # type: ignore[arg-type]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        staleness.History().read("k", 1, 2.0, 1.0)
    with pytest.raises(ValueError, match="max_examples"):
        staleness.History(max_examples=-1)


def test_thread_safety_smoke() -> None:
    h = staleness.History()
    threads, per_thread = 8, 500
    barrier = threading.Barrier(threads + 1)

    def reader(i: int) -> None:
        barrier.wait()
        for n in range(per_thread):
            with h.reading(("k", n % 7)) as r:
                r.version = n if i % 2 else None

    def writer() -> None:
        barrier.wait()
        for n in range(per_thread):
            h.write_committed(("k", n % 7), n)
            h.invalidation_done(("k", n % 7), n)

    workers = [threading.Thread(target=reader, args=(i,)) for i in range(threads)]
    workers.append(threading.Thread(target=writer))
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    report = h.check()
    assert report.reads + report.misses == threads * per_thread
    assert report.misses == threads // 2 * per_thread
    assert (report.writes, report.invalidations) == (per_thread, per_thread)
    assert 0 <= report.stale_reads <= report.reads
    assert len(report.examples) <= 10


# ---------------------------------------------------------------------------------------------- keep_reads=False


def _brute_force(
    invalidations: list[tuple[str, int, float]], reads: list[tuple[str, int, float, float]]
) -> list[tuple[str, int, int]]:
    """The rule, literally: (key, version, newest version invalidated strictly before the start) per stale read."""
    stale = []
    for key, version, start, _end in reads:
        newer = [v for k, v, at in invalidations if k == key and at < start and v > version]
        if newer:
            stale.append((key, version, max(v for k, v, at in invalidations if k == key and at < start)))
    return stale


@pytest.mark.parametrize("seed", range(5))
def test_both_modes_agree_with_the_rule_on_a_random_history(seed: int) -> None:
    rng = random.Random(seed)
    clock = FakeClock()
    kept = staleness.History(clock=clock.monotonic, max_examples=1000)
    judged = staleness.History(clock=clock.monotonic, max_examples=1000, keep_reads=False)
    versions = {"a": 1, "b": 1, "c": 1}
    invalidations: list[tuple[str, int, float]] = []
    reads: list[tuple[str, int, float, float]] = []
    for _ in range(400):
        clock.advance(rng.choice([0.0, 0.5, 1.0]))
        key = rng.choice("abc")
        if rng.random() < 0.2:
            versions[key] += 1
            invalidations.append((key, versions[key], clock.monotonic()))
            for h in (kept, judged):
                h.invalidation_done(key, versions[key])
        else:
            start = clock.monotonic() - rng.choice([0.0, 0.5, 2.0])
            version = max(1, versions[key] - rng.choice([0, 0, 0, 1, 2]))
            reads.append((key, version, start, clock.monotonic()))
            for h in (kept, judged):
                h.read(key, version, start, clock.monotonic())
    shuffled = staleness.History(max_examples=1000)  # the same events, recorded in any order, explicit times
    order = [(0, i) for i in range(len(invalidations))] + [(1, i) for i in range(len(reads))]
    rng.shuffle(order)
    for kind, i in order:
        if kind == 0:
            shuffled.invalidation_done(*invalidations[i][:2], at=invalidations[i][2])
        else:
            shuffled.read(*reads[i])
    expected = _brute_force(invalidations, reads)
    assert expected  # the history does contain stale reads
    for report in (kept.check(), judged.check()):
        assert report.reads == len(reads)
        assert [(e.key, e.version, e.newer_version) for e in report.examples] == expected
    report = shuffled.check()
    assert sorted((e.key, e.version, e.newer_version) for e in report.examples) == sorted(expected)


def test_judging_as_recorded_keeps_no_reads() -> None:
    h = staleness.History(keep_reads=False, max_examples=2)
    h.invalidation_done("k", 2, at=1.0)
    for i in range(100):
        h.read("k", 1, 2.0 + i, 2.0 + i)
    h.read("k", None, 3.0, 4.0)
    report = h.check()
    assert (report.reads, report.misses, report.stale_reads, len(report.examples)) == (100, 1, 100, 2)
    assert h._reads == []  # the point of the mode
    assert h.check() == report


def test_judging_as_recorded_refuses_an_invalidation_older_than_a_judged_read() -> None:
    h = staleness.History(keep_reads=False)
    h.read("k", 1, 7.0, 8.0)
    h.invalidation_done("other", 2, at=1.0)  # another key: fine
    h.invalidation_done("k", 2, at=7.0)  # not before the start: fine
    with pytest.raises(ValueError, match="already judged"):
        h.invalidation_done("k", 3, at=6.0)
    h.invalidation_done("k", 3)  # the history's clock: always fine
    assert h.check().stale_reads == 0
