"""The engine's generation bookkeeping: authority without a shared tier, a forward-only cache with one."""

from __future__ import annotations

from stratacache.core.keys import gen_name
from stratacache.invalidation import generations as generations_module
from stratacache.invalidation.generations import Generations


def test_authoritative_starts_known() -> None:
    g = Generations("ns", authoritative=True)
    assert g.snapshot(()) == (0,)
    assert g.snapshot(("a", "b")) == (0, 0, 0)
    assert g.missing(("a", "b")) == ()
    assert g.current((0, 0), ("never-bumped",)) is True


def test_authoritative_tag_bumps() -> None:
    g = Generations("ns", authoritative=True)
    before = g.snapshot(("a", "b"))
    assert before is not None
    g.bump_local(("a",))
    assert g.snapshot(("a", "b")) == (0, 1, 0)
    assert g.current(before, ("a", "b")) is False
    assert g.current((0, 0), ("b",)) is True
    g.bump_local(("a", "a"))
    assert g.snapshot(("a",)) == (0, 3)


def test_authoritative_namespace_bump_invalidates_everything() -> None:
    g = Generations("ns", authoritative=True)
    g.bump_local(("a",))
    old = g.snapshot(("a",))
    assert old is not None
    g.bump_ns_local()
    assert g.current(old, ("a",)) is False
    assert g.current((0,), ()) is False
    new = g.snapshot(("a",))
    assert new is not None
    assert new[0] == old[0] + 1
    assert g.current(new, ("a",)) is True


def test_authoritative_forget_is_a_no_op() -> None:
    g = Generations("ns", authoritative=True)
    g.bump_local(("a",))
    g.forget()
    assert g.snapshot(("a",)) == (0, 1)


def test_cache_mode_starts_unknown() -> None:
    g = Generations("ns", authoritative=False)
    assert g.snapshot(()) is None
    assert g.current((0,), ()) is None
    assert g.missing(("a", "b")) == ("a", "b")
    g.learn_ns(0)
    assert g.snapshot(()) == (0,)
    assert g.snapshot(("a",)) is None  # a tag never read is unknown, not 0
    assert g.current((0, 0), ("a",)) is None
    g.learn_tags(("a",), (4,))
    assert g.missing(("a", "b")) == ("b",)
    assert g.snapshot(("a",)) == (0, 4)
    assert g.current((0, 4), ("a",)) is True
    assert g.current((0, 3), ("a",)) is False


def test_cache_mode_only_moves_forward() -> None:
    g = Generations("ns", authoritative=False)
    g.learn_ns(5)
    g.learn_ns(3)
    assert g.ns == 5
    g.learn_tags(["a", "b"], [7, 2])
    g.learn_tags(["a", "b"], [6, 9])
    assert g.snapshot(("a", "b")) == (5, 7, 9)


def test_learn_names_from_other_processes() -> None:
    g = Generations("ns", authoritative=False)
    g.learn_ns(1)
    moved = g.learn_names({gen_name("ns", "a"): 3, gen_name("other", "a"): 99, gen_name("other"): 99})
    assert moved is False
    assert g.snapshot(("a",)) == (1, 3)
    assert g.learn_names({gen_name("ns"): 2}) is True
    assert g.learn_names({gen_name("ns"): 2}) is False
    assert g.learn_names({gen_name("ns"): 1, gen_name("ns", "a"): 1}) is False
    assert g.snapshot(("a",)) == (2, 3)


def test_namespace_prefix_does_not_leak_into_a_longer_namespace() -> None:
    g = Generations("ns", authoritative=False)
    g.learn_ns(0)
    assert g.learn_names({gen_name("ns2"): 5}) is False
    assert g.ns == 0


def test_store_names() -> None:
    g = Generations("ns", authoritative=False)
    assert g.store_names(("a", "b")) == [gen_name("ns", "a"), gen_name("ns", "b")]


def test_forget_in_cache_mode() -> None:
    g = Generations("ns", authoritative=False)
    g.learn_ns(3)
    g.learn_tags(("a",), (1,))
    g.forget()
    assert g.snapshot(()) is None
    assert g.missing(("a",)) == ("a",)
    g.learn_ns(1)  # after forgetting, whatever the store says is accepted again
    assert g.ns == 1


def test_cache_mode_growth_is_bounded() -> None:
    limit = generations_module.MAX_TRACKED
    g = Generations("ns", authoritative=False)
    g.learn_ns(0)
    batch = 10_000
    for start in range(0, limit + 3 * batch, batch):
        tags = [f"t{i}" for i in range(start, start + batch)]
        g.learn_tags(tags, [1] * batch)
        assert len(g.tags) <= limit + batch
    newest = f"t{limit + 3 * batch - 1}"
    assert g.snapshot((newest,)) == (0, 1)  # recent knowledge survives
    assert g.snapshot(("t0",)) is None  # the oldest was dropped: it will be fetched again, not guessed


def test_authoritative_growth_is_bounded_by_a_namespace_bump() -> None:
    limit = generations_module.MAX_TRACKED
    g = Generations("ns", authoritative=True)
    entry = g.snapshot(("t0",))
    assert entry is not None
    tags = tuple(f"t{i}" for i in range(limit + 1))
    g.bump_local(tags)
    assert len(g.tags) <= limit
    assert g.ns == 1
    # an entry written before the overflow is invalid, even though its tag's counter was forgotten
    assert g.current(entry, ("t0",)) is False
