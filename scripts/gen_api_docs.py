"""Render ``docs/api.md`` from the docstrings of every name in ``stratacache.__all__``.

The output is deterministic (fixed section order, members in definition order, no addresses or timestamps), so
the file is committed and can be checked: ``--check`` exits 1 when ``docs/api.md`` is out of date.

    python scripts/gen_api_docs.py           # rewrite docs/api.md
    python scripts/gen_api_docs.py --check   # fail if it differs from what the docstrings say
"""

from __future__ import annotations

import argparse
import difflib
import enum
import inspect
import re
import sys
from pathlib import Path
from typing import Any

import stratacache
from stratacache import decorators, errors, testing
from stratacache.tiers import specs

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "api.md"

# (section title, intro, names). Every name of stratacache.__all__ appears exactly once.
SECTIONS: list[tuple[str, str, list[str]]] = [
    (
        "Caches",
        (
            "Two facades over one engine. `Cache` and `AsyncCache` take the same arguments and have the same "
            "methods; on `AsyncCache` every method that touches a tier is a coroutine (`stats()` and the "
            "`namespace` property are not)."
        ),
        ["Cache", "AsyncCache", "open"],
    ),
    (
        "Tiers",
        (
            "Tier specs are frozen, validated descriptions; the cache builds the stores. The first tier may be a "
            "`MemoryTier` (L1); any further tier is a `TierSpec`: `SQLiteTier`, or your own subclass whose "
            "store passes `stratacache.testing.TierContract`. A built-in spec can also be given as a URL "
            "(`memory://...`, `sqlite:///...`, `redis://...`), parsed by the spec's `from_url`."
        ),
        ["MemoryTier", "SQLiteTier", "RedisTier", "TierSpec"],
    ),
    (
        "Loads",
        (
            "How `get_or_load` and decorated functions trade freshness for availability and load: "
            "stale-while-revalidate, fail-safe, loader timeouts, early refresh, negative caching and "
            "one loader per key across processes. Off unless a `LoadPolicy` says otherwise."
        ),
        ["LoadPolicy"],
    ),
    (
        "Codecs",
        (
            "A codec turns values into bytes at the edge: encoded once per write, decoded once per read. Pass a "
            'name (`codec="msgpack"`, `"json"`, `"pickle"`, `"msgpack+zstd"`, `"json+zstd"`, '
            '`"pickle+zstd"`) or an object implementing `Codec`.'
        ),
        ["Codec", "MsgpackCodec", "JsonCodec", "SignedPickleCodec", "ZstdCodec"],
    ),
    ("Statistics", "Returned by `cache.stats()`: a frozen snapshot, never a live view.", ["Stats", "TierStats"]),
    (
        "Access sampling",
        (
            "Off by default. `Cache(..., access_log=AccessLog(rate=0.01))` keeps a bounded sample of the keys "
            "looked up: `cache.hot_keys()`, `stratacache top`, and key traces for `stratacache simulate`."
        ),
        ["AccessLog", "HotKey"],
    ),
    ("Time", "Inject a clock to control expiry; see `stratacache.testing.FakeClock` below.", ["Clock"]),
    (
        "Errors",
        "",
        [
            "StrataCacheError",
            "ConfigError",
            "InvalidKeyError",
            "InvalidTTLError",
            "ValueTooLargeError",
            "LoadTimeout",
            "CodecError",
            "EncodeError",
            "SerializationError",
            "DecodeError",
            "SignatureError",
            "TierError",
            "TierTimeoutError",
            "TierUnavailableError",
            "CacheClosedError",
        ],
    ),
    ("Version", "", ["__version__"]),
]

# Public objects outside __all__ that the reference also documents: (section title, intro, objects).
EXTRA: list[tuple[str, str, list[tuple[str, Any]]]] = [
    (
        "Decorated functions",
        (
            "`Cache.cached` returns a `CachedFunction`, `AsyncCache.cached` an `AsyncCachedFunction` "
            "(module `stratacache.decorators`). Both keep the wrapped function's name and docstring; on a class "
            "they work as methods (`obj.method(...)`, `obj.method.key(...)`, `obj.method.invalidate(...)`)."
        ),
        [
            ("stratacache.decorators.CachedFunction", decorators.CachedFunction),
            ("stratacache.decorators.AsyncCachedFunction", decorators.AsyncCachedFunction),
        ],
    ),
    ("Helpers", "", [("stratacache.tiers.specs.default_sqlite_path", specs.default_sqlite_path)]),
    (
        "Testing helpers: `stratacache.testing`",
        "Importing `stratacache.testing` needs `pytest` (the contract suite is a set of pytest tests).",
        [
            ("stratacache.testing.FakeClock", testing.FakeClock),
            ("stratacache.testing.TierContract", testing.TierContract),
            ("stratacache.testing.FaultProxy", testing.FaultProxy),
        ],
    ),
]

# Classes users never construct themselves: documented without a constructor signature, with this note.
NO_CONSTRUCTOR: dict[str, str] = {
    "stratacache.decorators.CachedFunction": "Created by `@cache.cached`; not constructed directly.",
    "stratacache.decorators.AsyncCachedFunction": "Created by `@acache.cached`; not constructed directly.",
    "stratacache.testing.TierContract": (
        "A pytest test class: subclass it (the subclass name must start with `Test`) and override `tiers()`. "
        'The `cache` fixture is parametrized over `"sync"` (a `Cache`) and `"async"` (an `AsyncCache` driven '
        "through a private event loop). `value_limit` (default 1 MiB): every configuration under test must "
        "reject a value larger than this, so give your tiers a `max_bytes` of that size."
    ),
}

SERIALIZATION_ERROR_DOC = (
    "Alias of :class:`EncodeError` (``sc.SerializationError is sc.EncodeError``): the name used in the issue "
    "tracker and by some peers."
)

_DUNDERS_SHOWN = frozenset({"__call__", "__getitem__"})
_CLASS_ATTRS = ("id", "name", "scheme", "shared")
_SKIPPED_ATTRS = frozenset({"scheme", "id", "name", "shared", "clock", "value_limit"})

# ---------------------------------------------------------------- docstring to markdown

_ROLE = re.compile(r":(?:class|meth|func|data|attr|exc|mod):`~?([^`]+)`")
_DOUBLE = re.compile(r"``([^`]+)``")
_SECTION = re.compile(r"^(Args|Arguments|Attributes|Raises|Returns|Yields|Example|Examples|Note|Notes):\s*$")
_ITEM_NAME = re.compile(r"\*{0,2}[A-Za-z_][\w.]*(?:, \*{0,2}[A-Za-z_][\w.]*)*")


def _inline(text: str) -> str:
    """RST inline markup to markdown: roles and double backticks become code spans."""

    def role(m: re.Match[str]) -> str:
        target = m.group(1)
        return f"`{target.rsplit('.', 1)[-1] if target.startswith('stratacache.') else target}`"

    return _DOUBLE.sub(r"`\1`", _ROLE.sub(role, text))


def _indented(lines: list[str], i: int) -> tuple[list[str], int]:
    """The run of indented or blank lines starting at ``i``, and the index after it."""
    block: list[str] = []
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
        block.append(lines[i])
        i += 1
    return block, i


def _section(title: str, body: list[str]) -> list[str]:
    """A Google-style section (``Args:``...) as a bold title and a bullet list."""
    items: list[str] = []
    for line in body:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent <= 4 or not items:
            items.append(line.strip())
        else:
            items[-1] += " " + line.strip()
    out = [f"**{title}:**", ""]
    for item in items:
        name, sep, desc = item.partition(": ")
        out.append(f"- `{name}`: {_inline(desc)}" if sep and _ITEM_NAME.fullmatch(name) else f"- {_inline(item)}")
    return [*out, ""]


def _literal(lines: list[str]) -> list[str]:
    """An indented literal block as a fenced block."""
    text = inspect.cleandoc("\n".join(lines)).splitlines()
    lang = "python" if any(("def " in b or "class " in b) for b in text) else "text"
    return [f"```{lang}", *text, "```", ""]


def _md(doc: str | None) -> str:
    """Render a Google-style docstring as markdown (paragraphs, sections, literal blocks, doctests)."""
    lines = inspect.cleandoc(doc or "").splitlines()
    out: list[str] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            out.extend([_inline(" ".join(s.strip() for s in para)), ""])
            para.clear()

    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        section = _SECTION.match(lines[i])
        if stripped.startswith(">>>"):
            flush()
            start = i
            while i < len(lines) and lines[i].strip():
                i += 1
            out += ["```python", *lines[start:i], "```", ""]
        elif section:
            flush()
            body, i = _indented(lines, i + 1)
            out += _section(section.group(1), body)
        elif stripped.endswith("::"):
            para.append(stripped[:-1])
            flush()
            body, i = _indented(lines, i + 1)
            out += _literal(body)
        else:
            if stripped:
                para.append(stripped)
            else:
                flush()
            i += 1
    flush()
    return "\n".join(out).strip()


def _first_paragraph(doc: str | None) -> str:
    return _inline(" ".join(inspect.cleandoc(doc or "").split("\n\n")[0].split()))


# ---------------------------------------------------------------- signatures


def _ann(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def _param(p: inspect.Parameter) -> str:
    stars = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
    text = stars + p.name
    if p.annotation is not p.empty:
        text += ": " + _ann(p.annotation)
    if p.default is not p.empty:
        default = p.default
        shown = f"{type(default).__name__}.{default.name}" if isinstance(default, enum.Enum) else repr(default)
        text += (" = " if p.annotation is not p.empty else "=") + shown
    return text


def _signature(obj: Any, *, drop_first: bool = False) -> str:
    """``(params) -> return`` with string annotations unquoted; ``-> None`` is left out."""
    sig = inspect.signature(obj)
    params = list(sig.parameters.values())
    if drop_first and params and params[0].name in {"self", "cls"}:
        params = params[1:]
    parts: list[str] = []
    star_done = False
    for idx, p in enumerate(params):
        if p.kind is p.KEYWORD_ONLY and not star_done:
            parts.append("*")
        star_done = star_done or p.kind in {p.KEYWORD_ONLY, p.VAR_POSITIONAL}
        parts.append(_param(p))
        nxt = params[idx + 1] if idx + 1 < len(params) else None
        if p.kind is p.POSITIONAL_ONLY and (nxt is None or nxt.kind is not p.POSITIONAL_ONLY):
            parts.append("/")
    ret = sig.return_annotation
    shown = "" if ret is sig.empty or _ann(ret) == "None" else " -> " + _ann(ret)
    return "(" + ", ".join(parts) + ")" + shown


# ---------------------------------------------------------------- classes


def _members(cls: type) -> list[tuple[str, Any]]:
    """Public members in definition order, base classes first; a subclass override keeps the base's place."""
    order: list[str] = []
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__ in {"builtins", "typing", "abc"}:
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") and name not in _DUNDERS_SHOWN:
                continue
            if name not in found:
                order.append(name)
            found[name] = value
    return [(n, found[n]) for n in order]


def _render_method(cls: type, name: str, value: Any) -> list[str]:
    if isinstance(value, classmethod | staticmethod):
        kind = "classmethod" if isinstance(value, classmethod) else "staticmethod"
        func = value.__func__
        return [f"#### `{cls.__name__}.{name}{_signature(func, drop_first=True)}` ({kind})", "", _md(func.__doc__), ""]
    if name == "__getitem__":
        return [f"#### `{cls.__name__}[name]`", "", _md(value.__doc__), ""]
    is_async = inspect.iscoroutinefunction(value)
    if name == "__call__":
        head = f"#### `{'await ' if is_async else ''}fn(*args, **kwargs)` (calling it)"
        return [head, "", _md(value.__doc__), ""]
    head = f"#### `{'async ' if is_async else ''}{cls.__name__}.{name}{_signature(value, drop_first=True)}`"
    return [head, "", _md(value.__doc__), ""]


def _member_lines(cls: type) -> list[str]:
    """Properties as a list, then methods, each with its docstring."""
    props: list[str] = []
    methods: list[str] = []
    callable_cls = issubclass(cls, decorators.CachedFunction | decorators.AsyncCachedFunction)
    for name, value in _members(cls):
        if name in _SKIPPED_ATTRS or name.startswith("test_") or (name == "__call__" and not callable_cls):
            continue
        if isinstance(value, property):
            props.append(f"- **`{name}`** (property): {_first_paragraph(value.__doc__)}")
        elif inspect.isfunction(value) or isinstance(value, classmethod | staticmethod):
            methods += _render_method(cls, name, value)
    return ([*props, ""] if props else []) + methods


def _facts(cls: type) -> list[str]:
    """Protocol attributes, class constants, dataclass fields and context-manager support."""
    out: list[str] = []
    if getattr(cls, "_is_protocol", False):
        anns = [f"`{n}: {_ann(a)}`" for n, a in vars(cls).get("__annotations__", {}).items()]
        if anns:
            out += ["Attributes: " + ", ".join(anns) + ".", ""]
    attrs = [f"`{a} = {vars(cls)[a]!r}`" for a in _CLASS_ATTRS if isinstance(vars(cls).get(a), int | str)]
    if attrs:
        out += ["Class attributes: " + ", ".join(attrs) + ".", ""]
    if "Stats" in cls.__name__ and hasattr(cls, "__dataclass_fields__"):
        out += ["Fields: " + ", ".join(f"`{f}`" for f in cls.__dataclass_fields__) + ".", ""]
    if hasattr(cls, "__aenter__"):
        out += [f"An async context manager: `async with {cls.__name__}(...) as cache:` closes it on exit.", ""]
    elif hasattr(cls, "__enter__"):
        out += [f"A context manager: `with {cls.__name__}(...) as cache:` closes it on exit.", ""]
    return out


def _heading(qualname: str, cls: type) -> str:
    if issubclass(cls, BaseException):
        return f"### `{qualname}({', '.join(b.__name__ for b in cls.__bases__)})`"
    if getattr(cls, "_is_protocol", False):
        return f"### `{qualname}` (protocol)"
    if qualname in NO_CONSTRUCTOR:
        return f"### `{qualname}`"
    own_init = "__init__" in vars(cls) and not hasattr(cls, "__dataclass_fields__")
    sig = _signature(cls.__init__, drop_first=True) if own_init else _signature(cls)
    return f"### `{qualname}{sig}`"


def _render_class(qualname: str, cls: type) -> list[str]:
    out = [_heading(qualname, cls), "", _md(cls.__doc__), ""]
    if qualname in NO_CONSTRUCTOR:
        out += [NO_CONSTRUCTOR[qualname], ""]
    if issubclass(cls, BaseException):
        return out
    out += _facts(cls) + _member_lines(cls)
    tests = sorted(n for n in dir(cls) if n.startswith("test_"))
    if tests:
        listed = ", ".join(f"`{t}`" for t in tests)
        out += [f"Tests it runs ({len(tests)}, each through both facades): {listed}.", ""]
    return out


def _render(qualname: str, obj: Any) -> list[str]:
    if inspect.isclass(obj):
        return _render_class(qualname, obj)
    return [f"### `{qualname}{_signature(obj)}`", "", _md(obj.__doc__), ""]


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def _exported(name: str) -> list[str]:
    obj = getattr(stratacache, name)
    if name == "__version__":
        return ["### `sc.__version__`", "", f"`{obj!r}`: the installed release.", ""]
    if name == "SerializationError":
        return ["### `sc.SerializationError`", "", _md(SERIALIZATION_ERROR_DOC), ""]
    return _render(f"sc.{name}", obj)


def render() -> str:
    """The whole of ``docs/api.md``."""
    documented = [name for _, _, names in SECTIONS for name in names]
    missing = sorted(set(stratacache.__all__) - set(documented))
    extra = sorted(set(documented) - set(stratacache.__all__))
    if missing or extra or len(documented) != len(set(documented)):
        msg = f"SECTIONS out of sync with stratacache.__all__: missing {missing}, not exported {extra}"
        raise SystemExit(msg)
    version = stratacache.__version__
    out = [
        "# API reference",
        "",
        (
            f"<!-- GENERATED by scripts/gen_api_docs.py from the docstrings of stratacache {version}: do not "
            "edit; edit the docstrings and run `python scripts/gen_api_docs.py`. -->"
        ),
        "",
        (
            "Every name in `stratacache.__all__`, with its signature and docstring, followed by the "
            "decorated-function objects and the testing helpers. `import stratacache as sc` is assumed."
        ),
        "",
        _md(stratacache.__doc__),
        "",
        "## Contents",
        "",
    ]
    for title, _intro, names in SECTIONS:
        out.append(f"- [{title}](#{_anchor(title)}): " + ", ".join(f"`{n}`" for n in names))
    for title, _intro, objs in EXTRA:
        out.append(f"- [{title}](#{_anchor(title)}): " + ", ".join(f"`{q.rsplit('.', 1)[-1]}`" for q, _ in objs))
    out.append("")
    for title, intro, names in SECTIONS:
        out += [f"## {title}", "", intro, ""]
        if title == "Errors":
            out += [_md(errors.__doc__), ""]
        for name in names:
            out += _exported(name)
    for title, intro, objs in EXTRA:
        out += [f"## {title}", "", intro, ""]
        for qual, obj in objs:
            out += _render(qual, obj)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"


def main() -> int:
    """Write ``docs/api.md``, or with ``--check`` report whether it is up to date."""
    parser = argparse.ArgumentParser(description="Render docs/api.md from the docstrings.")
    parser.add_argument("--check", action="store_true", help="fail if docs/api.md is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            diff = difflib.unified_diff(current.splitlines(), text.splitlines(), "docs/api.md", "new", lineterm="")
            print("\n".join(list(diff)[:200]))
            print("docs/api.md is out of date: run python scripts/gen_api_docs.py", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
