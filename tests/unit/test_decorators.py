"""``@cache.cached``: argument normalisation, stable keys, methods, signatures, tags, None results."""

from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Any

import pytest

import stratacache as sc
from stratacache.errors import InvalidKeyError, InvalidTTLError
from stratacache.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> Iterator[sc.Cache]:
    with sc.Cache(sc.MemoryTier(max_entries=1000), namespace="deco", ttl=300, clock=clock) as c:
        yield c


# ------------------------------------------------------------------ arguments and keys


def test_equivalent_calls_share_one_entry(cache: sc.Cache) -> None:
    calls: list[tuple[int, int]] = []

    @cache.cached
    def f(x: int, y: int = 2) -> int:
        calls.append((x, y))
        return x + y

    assert f(1) == 3
    assert f(x=1) == 3
    assert f(1, y=2) == 3
    assert f(1, 2) == 3
    assert f(y=2, x=1) == 3
    assert calls == [(1, 2)]
    assert f.key(1) == f.key(x=1) == f.key(1, y=2) == f.key(1, 2) == f.key(y=2, x=1)
    assert f(1, 3) == 4
    assert calls == [(1, 2), (1, 3)]


def test_keyword_only_var_args_and_var_kwargs(cache: sc.Cache) -> None:
    calls: list[Any] = []

    @cache.cached
    def g(a: int, *rest: int, flag: bool = False, **opts: int) -> int:
        calls.append((a, rest, flag, opts))
        return a

    g(1, 2, 3, flag=True, z=1, y=2)
    g(1, 2, 3, y=2, flag=True, z=1)  # kwargs order does not matter
    assert len(calls) == 1
    g(1, 2, 3, flag=True)
    g(1, 2, 3, flag=False)
    g(1, 2, 3)  # flag defaults to False
    g(1, (2, 3))  # type: ignore[arg-type]
    assert len(calls) == 4


def test_key_is_stable_readable_and_discriminating(cache: sc.Cache) -> None:
    @cache.cached
    def load_user(user_id: Any) -> Any:
        return user_id

    k = load_user.key(42)
    assert k == load_user.key(42)
    assert k.startswith(f"{__name__}.test_key_is_stable_readable_and_discriminating.<locals>.load_user:")
    variants = [load_user.key(v) for v in (42, 42.0, "42", True, None, b"42", (42,), [42])]
    assert len(set(variants)) == len(variants)


def test_same_arguments_to_different_functions_get_different_keys(cache: sc.Cache) -> None:
    @cache.cached
    def a(x: int) -> str:
        return "a"

    @cache.cached
    def b(x: int) -> str:
        return "b"

    assert a.key(1) != b.key(1)
    assert (a(1), b(1)) == ("a", "b")


def test_key_is_shared_by_caches_of_the_same_namespace(clock: FakeClock) -> None:
    def make() -> Any:
        c = sc.Cache(sc.MemoryTier(max_entries=10), namespace="x", clock=clock)

        def load_user(user_id: int) -> int:
            return user_id

        return c, c.cached(load_user)

    (c1, f1), (c2, f2) = make(), make()
    try:
        assert f1.key(7) == f2.key(7)
    finally:
        c1.close()
        c2.close()


@dataclasses.dataclass(frozen=True)
class Query:
    table: str
    limit: int


def test_rich_arguments(cache: sc.Cache) -> None:
    calls: list[Any] = []

    @cache.cached
    def run(q: Query, options: dict[str, Any], ids: set[int]) -> int:
        calls.append(q)
        return len(ids)

    run(Query("t", 10), {"a": 1, "b": [1, 2]}, {3, 1, 2})
    run(Query("t", 10), {"b": [1, 2], "a": 1}, {1, 2, 3})
    assert len(calls) == 1
    run(Query("t", 11), {"a": 1, "b": [1, 2]}, {1, 2, 3})
    assert len(calls) == 2


def test_unsupported_argument_raises_before_calling(cache: sc.Cache) -> None:
    calls: list[Any] = []

    @cache.cached
    def f(x: Any) -> int:
        calls.append(x)
        return 1

    with pytest.raises(InvalidKeyError):
        f(object())
    assert calls == []


def test_wrong_arguments_raise_type_error_without_calling(cache: sc.Cache) -> None:
    calls: list[Any] = []

    @cache.cached
    def f(x: int) -> int:
        calls.append(x)
        return x

    with pytest.raises(TypeError):
        f()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        f(1, 2)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        f(y=1)  # type: ignore[call-arg]
    assert calls == []


def test_custom_key_function(cache: sc.Cache) -> None:
    calls: list[int] = []

    @cache.cached(key=lambda user_id, verbose=False: f"user:{user_id}")
    def load(user_id: int, verbose: bool = False) -> int:
        calls.append(user_id)
        return user_id

    load(1)
    load(1, verbose=True)
    assert calls == [1]
    assert load.key(1).endswith(":user:1")
    assert load.invalidate(1) is True
    load(1)
    assert calls == [1, 1]


# ------------------------------------------------------------------ methods


class Repo:
    loads: list[tuple[str, int]]

    def __init__(self, name: str) -> None:
        self.name = name
        self.loads = []


def test_methods_leave_self_out_of_the_key(clock: FakeClock) -> None:
    cache = sc.Cache(sc.MemoryTier(max_entries=100), clock=clock)

    class UserRepo(Repo):
        @cache.cached
        def get(self, user_id: int) -> dict[str, int]:
            self.loads.append((self.name, user_id))
            return {"id": user_id}

    try:
        r1, r2 = UserRepo("one"), UserRepo("two")
        assert r1.get(42) == {"id": 42}
        assert r2.get(42) == {"id": 42}
        assert r1.get(user_id=42) == {"id": 42}
        assert r1.loads == [("one", 42)]
        assert r2.loads == []
        assert r1.get.key(42) == r2.get.key(42) == UserRepo.get.key(42)
        assert r1.get.invalidate(42) is True
        assert r1.get.invalidate(42) is False
        assert r2.get(42) == {"id": 42}
        assert r2.loads == [("two", 42)]
        assert UserRepo.get(r1, 42) == {"id": 42}  # unbound call through the class
        assert r1.loads == [("one", 42)]
    finally:
        cache.close()


def test_method_tags_and_key_callables_do_not_receive_self(clock: FakeClock) -> None:
    cache = sc.Cache(sc.MemoryTier(max_entries=100), clock=clock)
    received: list[tuple[Any, ...]] = []

    def tags(*args: Any, **kwargs: Any) -> list[str]:
        received.append(args)
        return [f"user:{args[0] if args else kwargs['user_id']}"]

    class UserRepo(Repo):
        @cache.cached(tags=tags)
        def get(self, user_id: int) -> int:
            self.loads.append((self.name, user_id))
            return user_id

    try:
        repo = UserRepo("r")
        repo.get(7)
        assert received == [(7,)]
        cache.invalidate_tags("user:7")
        repo.get(7)
        assert repo.loads == [("r", 7), ("r", 7)]
    finally:
        cache.close()


def test_classmethod_style_cls_is_left_out(clock: FakeClock) -> None:
    cache = sc.Cache(sc.MemoryTier(max_entries=100), clock=clock)
    calls: list[int] = []

    class Factory:
        @cache.cached
        def build(cls, n: int) -> int:  # noqa: N805 - a plain function whose first parameter is named cls
            calls.append(n)
            return n * 2

    try:
        assert Factory().build(3) == 6
        assert Factory().build(3) == 6
        assert calls == [3]
    finally:
        cache.close()


# ------------------------------------------------------------------ wrapping


def test_signature_and_metadata_are_preserved(cache: sc.Cache) -> None:
    def load_user(user_id: int, *, fields: tuple[str, ...] = ("name",)) -> dict[str, Any]:
        """Load one user."""
        return {}

    wrapped = cache.cached(ttl=60)(load_user)
    assert inspect.signature(wrapped) == inspect.signature(load_user)
    assert wrapped.__name__ == "load_user"
    assert wrapped.__qualname__ == load_user.__qualname__
    assert wrapped.__doc__ == "Load one user."
    assert wrapped.__module__ == __name__
    assert wrapped.__wrapped__ is load_user
    assert not inspect.iscoroutinefunction(wrapped)


@pytest.mark.asyncio
async def test_async_signature_and_metadata_are_preserved() -> None:
    async def fetch(item_id: int) -> str:
        """Fetch one item."""
        return str(item_id)

    async with sc.AsyncCache(sc.MemoryTier(max_entries=10), clock=FakeClock()) as acache:
        wrapped = acache.cached(fetch)
        assert inspect.signature(wrapped) == inspect.signature(fetch)
        assert wrapped.__name__ == "fetch"
        assert wrapped.__doc__ == "Fetch one item."
        assert wrapped.__wrapped__ is fetch


def test_cache_cached_refuses_coroutine_functions(cache: sc.Cache) -> None:
    async def fetch(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="AsyncCache"):
        cache.cached(fetch)
    with pytest.raises(TypeError, match="AsyncCache"):
        cache.cached(ttl=5)(fetch)


@pytest.mark.asyncio
async def test_async_cache_cached_refuses_plain_functions() -> None:
    def plain(x: int) -> int:
        return x

    async with sc.AsyncCache(sc.MemoryTier(max_entries=10), clock=FakeClock()) as acache:
        with pytest.raises(TypeError, match=r"Cache\.cached"):
            acache.cached(plain)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"Cache\.cached"):
            acache.cached(ttl=5)(plain)  # type: ignore[arg-type]


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), True])
def test_bad_ttl_at_decoration(cache: sc.Cache, ttl: Any) -> None:
    with pytest.raises(InvalidTTLError):
        cache.cached(ttl=ttl)


# ------------------------------------------------------------------ behaviour


def test_none_results_are_cached(cache: sc.Cache) -> None:
    calls: list[int] = []

    @cache.cached
    def find(x: int) -> None:
        calls.append(x)

    assert find(1) is None
    assert find(1) is None
    assert calls == [1]


def test_falsy_results_are_cached(cache: sc.Cache) -> None:
    calls: list[Any] = []

    @cache.cached
    def f(x: Any) -> Any:
        calls.append(x)
        return x

    for v in (0, "", [], {}, False):
        assert f(v) == v
        assert f(v) == v
    assert len(calls) == 5


def test_invalidate(cache: sc.Cache) -> None:
    calls: list[int] = []

    @cache.cached
    def f(x: int, y: int = 0) -> int:
        calls.append(x)
        return len(calls)

    assert f(1) == 1
    assert f(2) == 2
    assert f.invalidate(1) is True
    assert f.invalidate(1) is False
    assert f(1) == 3
    assert f(2) == 2
    assert f.invalidate(x=2, y=0) is True  # any equivalent spelling of the call
    assert f(2) == 4


def test_tags_callable(cache: sc.Cache) -> None:
    calls: list[int] = []
    seen_args: list[Any] = []

    def tags(user_id: int, detailed: bool = False) -> list[str]:
        seen_args.append((user_id, detailed))
        return [f"user:{user_id}", "users"]

    @cache.cached(tags=tags)
    def load_user(user_id: int, detailed: bool = False) -> dict[str, int]:
        calls.append(user_id)
        return {"id": user_id}

    load_user(1)
    load_user(2, detailed=True)
    assert (1, False) in seen_args
    assert (2, True) in seen_args
    cache.invalidate_tags("user:1")
    load_user(1)
    load_user(2, detailed=True)
    assert calls == [1, 2, 1]
    cache.invalidate_tags("users")
    load_user(2, detailed=True)
    assert calls == [1, 2, 1, 2]


@pytest.mark.parametrize("as_kwarg", [False, True])
def test_the_tags_callable_runs_on_misses_only_and_hits_still_honour_the_tags(
    cache: sc.Cache, *, as_kwarg: bool
) -> None:
    tag_calls: list[int] = []
    calls: list[int] = []

    def tags(user_id: int) -> list[str]:
        tag_calls.append(user_id)
        return [f"user:{user_id}"]

    @cache.cached(tags=tags)
    def load(user_id: int) -> int:
        calls.append(user_id)
        return user_id * 10

    def call(user_id: int) -> int:
        return load(user_id=user_id) if as_kwarg else load(user_id)  # the quick path, then the general one

    assert [call(7) for _ in range(5)] == [70] * 5
    assert (calls, tag_calls) == ([7], [7])  # four hits: no tags computed
    cache.invalidate_tags("user:7")
    assert call(7) == 70
    assert (calls, tag_calls) == ([7, 7], [7, 7])  # the stored entry's tags made the hit a miss


def test_bad_tags_from_the_callable_raise(cache: sc.Cache) -> None:
    @cache.cached(tags=lambda x: "not-a-list")
    def f(x: int) -> int:
        return x

    with pytest.raises(InvalidKeyError):
        f(1)


def test_ttl_of_the_decorator(cache: sc.Cache, clock: FakeClock) -> None:
    calls: list[int] = []

    @cache.cached(ttl=10)
    def f(x: int) -> int:
        calls.append(x)
        return x

    f(1)
    clock.advance(9)
    f(1)
    assert calls == [1]
    clock.advance(2)
    f(1)
    assert calls == [1, 1]


def test_default_ttl_is_the_caches(cache: sc.Cache, clock: FakeClock) -> None:
    calls: list[int] = []

    @cache.cached
    def f(x: int) -> int:
        calls.append(x)
        return x

    f(1)
    clock.advance(299)
    f(1)
    assert calls == [1]
    clock.advance(2)
    f(1)
    assert calls == [1, 1]


def test_exceptions_are_not_cached(cache: sc.Cache) -> None:
    calls: list[int] = []

    @cache.cached
    def flaky(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            raise RuntimeError("first call fails")
        return x

    with pytest.raises(RuntimeError):
        flaky(1)
    assert flaky(1) == 1
    assert flaky(1) == 1
    assert calls == [1, 1]


def test_decorated_results_are_visible_through_the_cache(cache: sc.Cache) -> None:
    @cache.cached
    def f(x: int) -> str:
        return f"v{x}"

    f(5)
    assert cache.get(f.key(5)) == "v5"
    cache.set(f.key(6), "preloaded")
    assert f(6) == "preloaded"


# ------------------------------------------------------------------ async


@pytest.mark.asyncio
async def test_async_cached_function() -> None:
    clock = FakeClock()
    calls: list[int] = []
    async with sc.AsyncCache(sc.MemoryTier(max_entries=100), clock=clock) as acache:

        @acache.cached(ttl=10, tags=lambda user_id, extra="x": [f"user:{user_id}"])
        async def load(user_id: int, extra: str = "x") -> dict[str, Any] | None:
            calls.append(user_id)
            return None if user_id == 0 else {"id": user_id}

        assert await load(1) == {"id": 1}
        assert await load(user_id=1, extra="x") == {"id": 1}
        assert await load(0) is None
        assert await load(0) is None
        assert calls == [1, 0]
        assert await load.invalidate(1) is True
        assert await load(1) == {"id": 1}
        await acache.invalidate_tags("user:0")
        assert await load(0) is None
        assert calls == [1, 0, 1, 0]
        clock.advance(11)
        await load(1)
        assert calls == [1, 0, 1, 0, 1]


@pytest.mark.asyncio
async def test_async_method() -> None:
    async with sc.AsyncCache(sc.MemoryTier(max_entries=100), clock=FakeClock()) as acache:

        class Service(Repo):
            @acache.cached
            async def get(self, n: int) -> int:
                self.loads.append((self.name, n))
                return n

        s1, s2 = Service("a"), Service("b")
        assert await s1.get(3) == 3
        assert await s2.get(3) == 3
        assert s1.loads == [("a", 3)]
        assert s2.loads == []
        assert await s2.get.invalidate(3) is True
        assert await s2.get(3) == 3
        assert s2.loads == [("b", 3)]
