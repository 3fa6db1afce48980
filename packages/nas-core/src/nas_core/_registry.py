"""Name registries for spaces, objectives, strategies, proxies and CLI commands.

Plugins fill them through the registration hooks (``nas_register_spaces(registry)`` ...). Each
entry is stamped with the plugin and distribution that added it, so clashes and ``nas plugins``
can name them. Factories may be lazy ``"module:attr"`` strings: nothing heavy is imported until an
entry is created.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping

from ._errors import ConfigError, PluginError, RegistryClashError, UnknownNameError

__all__ = ["Registry", "Entry", "Origin", "normalize_name", "KINDS", "FIRST_PARTY", "import_target", "keyword_names",
           "accepted_kwargs"]

#: The kinds of things plugins register, in the order registries are built.
KINDS: tuple[str, ...] = ("space", "objective", "strategy", "proxy", "command")

#: Which distribution provides the usual names, for "pip install ..." hints when one is missing.
FIRST_PARTY: Mapping[str, Mapping[str, str]] = {
    "space": dict.fromkeys(
        ["nb201", "darts", "darts_s1", "darts_s2", "darts_s3", "darts_s4", "vit",
         "autoformer_tiny", "autoformer_small", "autoformer_base"],
        "nas-spaces",
    ),
    "objective": dict.fromkeys(
        ["mim", "rotation", "colorization", "jigsaw", "distill", "supervised", "random_labels"],
        "nas-objectives",
    ),
    "strategy": dict.fromkeys(["darts", "evolution", "gradient_ascent", "random"], "nas-strategies"),
    "proxy": dict.fromkeys(
        ["grad_norm", "snip", "grasp", "fisher", "jacov", "synflow", "nwot", "zen", "epe_nas", "flops",
         "params", "l2_norm", "plain", "unified"],
        "nas-proxies",
    ),
    "command": {"proxies": "nas-proxies"},
}

_NAME_RE = re.compile(r"^[a-z0-9_]+$")


def normalize_name(name: str) -> str:
    """Fold case, strip, and turn ``-``/spaces into ``_``: ``"NB-201 "`` -> ``"nb_201"``."""
    if not isinstance(name, str):
        raise TypeError(f"a registry name must be a string, got {type(name).__name__}: {name!r}")
    return re.sub(r"[-\s]+", "_", name.strip().lower())


@dataclass(frozen=True)
class Origin:
    """Who registered an entry: plugin name, module, distribution and its version."""

    plugin: str
    module: str = ""
    dist: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        where = f" ({self.module})" if self.module else ""
        if self.dist:
            return f"{self.dist} {self.version or '?'}{where}"
        return f"plugin '{self.plugin}'{where}"


@dataclass(frozen=True)
class Entry:
    """One registered name."""

    kind: str
    name: str
    factory: str | Callable[..., Any]
    origin: Origin
    aliases: tuple[str, ...] = ()
    summary: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def load(self) -> Callable[..., Any]:
        """Import a lazy ``"module:attr"`` factory (or return the callable)."""
        if callable(self.factory):
            return self.factory
        try:
            obj = import_target(self.factory)
        except (ImportError, AttributeError) as exc:
            raise PluginError(
                f"{self.kind} '{self.name}' from {self.origin} points at '{self.factory}', which cannot be "
                f"imported: {type(exc).__name__}: {exc}. Reinstall {self.origin.dist or 'the plugin'} or fix "
                f"its registration."
            ) from exc
        if not callable(obj) and self.kind != "command":  # a command is a namespace of add_arguments and run
            raise PluginError(f"{self.kind} '{self.name}' from {self.origin}: '{self.factory}' is not callable")
        return obj

    def create(self, **cfg: Any) -> Any:
        """Build the object: preset defaults, overridden by ``cfg``; ``None`` values are pruned."""
        factory = self.load()
        kwargs = {**self.defaults, **{k: v for k, v in cfg.items() if v is not None}}
        _check_options(self.kind, self.name, factory, kwargs)
        obj = factory(**kwargs)
        # Let the object know the name it was created under (used in results and messages).
        try:
            if getattr(obj, "registered_name", None) in (None, ""):
                obj.registered_name = self.name
        except AttributeError:  # pragma: no cover - objects with __slots__
            pass
        return obj


def import_target(spec: str) -> Any:
    """The object a ``"module:attr.sub"`` string names (raises ImportError/AttributeError)."""
    module_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def keyword_names(fn: Callable[..., Any]) -> frozenset[str] | None:
    """The keyword arguments ``fn`` names in its signature (``self`` excluded), or ``None`` when it accepts any
    (``**kwargs``, or no readable signature)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return frozenset(n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n != "self")


def accepted_kwargs(fn: Callable[..., Any], hints: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The subset of ``hints`` that ``fn`` accepts as keywords, and the names it does not."""
    names = keyword_names(fn)
    if names is None:
        return dict(hints), []
    return {k: v for k, v in hints.items() if k in names}, [k for k in hints if k not in names]


def _check_options(kind: str, name: str, factory: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
    valid = keyword_names(factory)
    if valid is None:
        return
    unknown = [k for k in kwargs if k not in valid]
    if unknown:
        bad = unknown[0]
        ordered = [n for n in inspect.signature(factory).parameters if n in valid]
        close = difflib.get_close_matches(bad, ordered, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"{kind} '{name}': unknown option '{bad}' (valid: {', '.join(ordered) or 'none'}).{hint}"
        )


#: ``on_clash(error)`` decides what a clash does: raise it (the default) or record it and keep the first entry
ClashHandler = Callable[[RegistryClashError], None]


def _raise(error: RegistryClashError) -> None:
    raise error


class Registry:
    """The names of one kind (``"space"``, ``"objective"``, ``"strategy"``, ``"proxy"``, ``"command"``).

    Plugins receive it in their registration hook and call :meth:`add`.

    :param failures: ``() -> [(plugin label, error)]``, the plugins that failed (named in unknown-name errors).
    :param disabled: ``() -> {distribution: switch}``, installed plugins a switch disabled (so an unknown name
        says "disabled by ..." rather than "pip install ...").
    """

    def __init__(
        self,
        kind: str,
        *,
        failures: Callable[[], list[tuple[str, str]]] | None = None,
        disabled: Callable[[], Mapping[str, str]] | None = None,
    ):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}
        self._overrides: set[str] = set()
        self._origin = Origin(plugin="<python>")
        self._on_clash: ClashHandler = _raise
        self._failures = failures or (lambda: [])
        self._disabled = disabled or (lambda: {})

    # -- registration ---------------------------------------------------------------------------
    @contextmanager
    def registering_as(self, origin: Origin, on_clash: ClashHandler | None = None) -> Iterator[Registry]:
        """Stamp entries added inside the block with ``origin`` (used by the plugin manager); ``on_clash``
        receives each clash instead of it being raised (the first registration is kept)."""
        previous = self._origin, self._on_clash
        self._origin, self._on_clash = origin, on_clash or _raise
        try:
            yield self
        finally:
            self._origin, self._on_clash = previous

    def discard(self, plugin: str) -> list[str]:
        """Remove every entry the plugin named ``plugin`` added (a plugin whose registration failed adds nothing)."""
        gone = [k for k, e in self._entries.items() if e.origin.plugin == plugin]
        for k in gone:
            for a in self._entries.pop(k).aliases:
                self._aliases.pop(a, None)
            self._overrides.discard(k)
        return gone

    def add(
        self,
        name: str,
        factory: str | Callable[..., Any],
        *,
        aliases: tuple[str, ...] | list[str] = (),
        summary: str = "",
        defaults: Mapping[str, Any] | None = None,
        replace: bool = False,
        **metadata: Any,
    ) -> Entry:
        """Register ``name``.

        :param name: lowercase ``[a-z0-9_]+`` (``-`` is accepted and folded to ``_``).
        :param factory: a class/callable, or a lazy ``"module:attr"`` string.
        :param aliases: other names that resolve to this entry.
        :param summary: one line shown by ``nas plugins`` and in error messages.
        :param defaults: preset keyword arguments (``darts_s2`` = ``darts`` with ``preset="s2"``);
            options given to ``create_*`` override them.
        :param replace: override the entry of that name on purpose instead of clashing with it, whichever
            plugin registers first.
        :param metadata: anything else (``capabilities=``, ``requires=``, ``higher_is_better=``,
            ``paper=``), readable without importing the factory.
        """
        key = normalize_name(name)
        if not _NAME_RE.match(key):
            raise PluginError(
                f"{self._origin}: {self.kind} name {name!r} is invalid; use lowercase letters, digits and '_'"
            )
        if isinstance(factory, str) and ":" not in factory:
            raise PluginError(
                f"{self._origin}: {self.kind} '{key}' has factory {factory!r}; a lazy factory must read "
                f"'module:attr'"
            )
        alias_keys = tuple(normalize_name(a) for a in aliases)
        if not replace:
            if key in self._overrides:  # an override registered before the entry it overrides: it stays
                return self._entries[key]
            for candidate in (key, *alias_keys):
                owner = self._entries.get(candidate) or self._entries.get(self._aliases.get(candidate, ""))
                if owner is not None:
                    self._on_clash(RegistryClashError(
                        f"{self.kind} '{candidate}' from {self._origin} clashes with {owner.origin}"
                        f"{'' if owner.name == candidate else f' (alias of {owner.name!r})'}. Rename one, "
                        f"or pass replace=True to override on purpose.",
                        kind=self.kind, name=candidate, first=owner.origin, second=self._origin,
                        alias_of=None if owner.name == candidate else owner.name,
                    ))
                    return owner  # the first registration is kept
        else:
            old = self._entries.pop(key, None)
            if old is not None:
                for a in old.aliases:
                    self._aliases.pop(a, None)
            self._overrides.add(key)
        entry = Entry(
            kind=self.kind,
            name=key,
            factory=factory,
            origin=self._origin,
            aliases=alias_keys,
            summary=summary,
            defaults=MappingProxyType(dict(defaults or {})),
            metadata=MappingProxyType(dict(metadata)),
        )
        self._entries[key] = entry
        for a in alias_keys:
            self._aliases[a] = key
        return entry

    # -- lookup ---------------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """The canonical name for ``name`` or one of its aliases (raises :class:`UnknownNameError`)."""
        key = normalize_name(name)
        if key in self._entries:
            return key
        if key in self._aliases:
            return self._aliases[key]
        raise self._unknown(name, key)

    def get(self, name: str) -> Entry:
        return self._entries[self.resolve(name)]

    def __getitem__(self, name: str) -> Entry:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = normalize_name(name)
        return key in self._entries or key in self._aliases

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: _natural_key(e.name)))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self, filter: str | None = None, exclude: str | tuple[str, ...] = ()) -> list[str]:
        """Sorted names, optionally matching an fnmatch ``filter`` and not matching ``exclude``."""
        excludes = (exclude,) if isinstance(exclude, str) else tuple(exclude)
        out = []
        for entry in self:
            if filter and not fnmatch.fnmatchcase(entry.name, normalize_name(filter)):
                continue
            if any(fnmatch.fnmatchcase(entry.name, normalize_name(x)) for x in excludes):
                continue
            out.append(entry.name)
        return out

    def create(self, name: str, **cfg: Any) -> Any:
        return self.get(name).create(**cfg)

    # -- messages -------------------------------------------------------------------------------
    def _unknown(self, raw: str, key: str) -> UnknownNameError:
        known = sorted([*self._entries, *self._aliases])
        close = tuple(difflib.get_close_matches(key, known, n=3, cutoff=0.5))
        parts = [f"Unknown {self.kind} '{raw}'."]
        if close:
            parts.append(f"Did you mean '{close[0]}'?")
        by_dist: dict[str, list[str]] = {}
        for e in self:
            label = f"{e.origin.dist} {e.origin.version}" if e.origin.dist else f"plugin '{e.origin.plugin}'"
            by_dist.setdefault(label, []).append(e.name)
        if by_dist:
            installed = "; ".join(f"{', '.join(names)} ({label})" for label, names in by_dist.items())
        else:
            installed = "none"
        parts.append(f"Installed: {installed}.")
        disabled = dict(self._disabled())
        provider = FIRST_PARTY.get(self.kind, {}).get(key)
        from ._install import install_hint

        if provider and provider in disabled:
            parts.append(f"'{key}' is provided by {provider}, which is installed but disabled by {disabled[provider]}.")
        elif provider:
            parts.append(f"'{key}' is provided by {provider}: {install_hint(provider)}")
        else:
            missing = sorted({d for n, d in FIRST_PARTY.get(self.kind, {}).items() if n not in self._entries and d not in disabled})
            if missing:
                parts.append(f"More {self.kind}s come with: {', '.join(missing)} ({install_hint(*missing)}).")
        others = {d: why for d, why in disabled.items() if d != provider}
        if others:
            parts.append("Installed but disabled: " + "; ".join(f"{d} (by {why})" for d, why in sorted(others.items())) + ".")
        for plugin, error in self._failures():
            parts.append(f"Plugin {plugin} failed to load: {error}")
        return UnknownNameError(" ".join(parts), kind=self.kind, name=raw, suggestions=close)


def _natural_key(text: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]
