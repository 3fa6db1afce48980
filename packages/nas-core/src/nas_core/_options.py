"""Option values checked against the types that components declare, before any compute.

A component (space, objective, strategy, proxy, or anything else built from options) declares its options as typed
constructor parameters or dataclass fields. :func:`check_options` checks the values a user gives (command line,
config file, Python) against those annotations: ``epochs="abc"``, ``1.5``, ``True`` or ``inf`` for an ``int``;
``a_betas=0.5`` for a ``tuple[float, float]``; a string outside a ``Literal``. Floats must be finite.

Where a value also needs a range, a component declares it with ``Annotated[float, Range(gt=0)]`` or
``field(metadata={"range": Range(gt=0)})``. Names every NAS component shares (``epochs``, ``batch_size``, learning
rates ``lr``/``*_lr``, ``weight_decay``, ``val_fraction``, ...) have conventional ranges (:data:`CONVENTIONS`), so
components that declare none are checked as well. ``None`` always passes: it means "the default".
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import fnmatch
import inspect
import math
import numbers
import os
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ._errors import ConfigError

__all__ = ["Range", "CONVENTIONS", "check_options", "check_value", "option_specs"]


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric option (or of every number inside a sequence option).

    ``Range(ge=1)`` is ``>= 1``, ``Range(gt=0, lt=1)`` is the open interval ``(0, 1)``.
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def __contains__(self, value: float) -> bool:
        return not (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
        )

    def __str__(self) -> str:
        low = None if self.ge is None and self.gt is None else ("[" if self.gt is None else "(", _num(self.ge if self.gt is None else self.gt))
        high = None if self.le is None and self.lt is None else (_num(self.le if self.lt is None else self.lt), "]" if self.lt is None else ")")
        if low and high:
            return f"in {low[0]}{low[1]}, {high[0]}{high[1]}"
        if low:
            return f"{'>=' if low[0] == '[' else '>'} {low[1]}"
        if high:
            return f"{'<=' if high[1] == ']' else '<'} {high[0]}"
        return "any number"


_FACTORY = getattr(dataclasses, "_HAS_DEFAULT_FACTORY", object())  # a dataclass field's default_factory, in a signature


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


#: Conventional ranges of option names shared across components (``fnmatch`` patterns, first match wins). A range a
#: component declares itself (``Annotated``/field metadata) takes precedence.
CONVENTIONS: tuple[tuple[str, Range], ...] = (
    ("epochs", Range(ge=1)),
    ("generations", Range(ge=1)),
    ("population", Range(ge=1)),
    ("budget", Range(ge=1)),
    ("steps_per_epoch", Range(ge=1)),
    ("batch_size", Range(ge=1)),
    ("*_batch_size", Range(ge=1)),
    ("*_epochs", Range(ge=0)),
    ("lr", Range(gt=0)),
    ("*_lr", Range(gt=0)),
    ("*_lr_min", Range(ge=0)),
    ("weight_decay", Range(ge=0)),
    ("*_weight_decay", Range(ge=0)),
    ("momentum", Range(ge=0, le=1)),
    ("*_momentum", Range(ge=0, le=1)),
    ("*betas", Range(ge=0, lt=1)),
    ("grad_clip", Range(gt=0)),
    ("val_fraction", Range(gt=0, lt=1)),
    ("*_val_fraction", Range(ge=0, lt=1)),
    ("mask_ratio", Range(gt=0, lt=1)),
    ("*_prob", Range(ge=0, le=1)),
    ("channels", Range(ge=1)),
    ("*_channels", Range(ge=1)),
    ("num_cells", Range(ge=1)),
    ("img_size", Range(ge=1)),
    ("patch_size", Range(ge=1)),
    ("in_chans", Range(ge=1)),
    ("num_classes", Range(ge=1)),
    ("max_params", Range(gt=0)),
    ("max_flops", Range(gt=0)),
)


def _convention(name: str) -> Range | None:
    return next((r for pattern, r in CONVENTIONS if fnmatch.fnmatchcase(name, pattern)), None)


def _hints(obj: Any) -> dict[str, Any]:
    """Evaluated annotations of a class's ``__init__``/fields or of a function (names that fail to evaluate are
    left out: they are not checked)."""
    target = obj.__init__ if inspect.isclass(obj) and not dataclasses.is_dataclass(obj) else obj
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:  # noqa: BLE001 - an annotation naming a TYPE_CHECKING-only import: evaluate one by one
        pass
    raw = getattr(target, "__annotations__", {}) or {}
    module = inspect.getmodule(target)
    env = dict(vars(module)) if module is not None else {}
    out: dict[str, Any] = {}
    for key, ann in raw.items():
        try:
            out[key] = eval(ann, env) if isinstance(ann, str) else ann  # noqa: S307 - annotations of our own imports
        except Exception:  # noqa: BLE001
            continue
    return out


def option_specs(factory: Callable[..., Any]) -> dict[str, tuple[Any, Range | None, Any]]:
    """``{option: (annotation, range, default)}`` for the keyword options of ``factory`` (a class or a function;
    ``default`` is ``inspect.Parameter.empty`` for a required option)."""
    hints = _hints(factory)
    ranges: dict[str, Range] = {}
    if dataclasses.is_dataclass(factory):
        for f in dataclasses.fields(factory):
            r = f.metadata.get("range") if f.metadata else None
            if isinstance(r, Range):
                ranges[f.name] = r
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    out: dict[str, tuple[Any, Range | None, Any]] = {}
    for name, p in params.items():
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or name == "self":
            continue
        ann = hints.get(name, Any)
        out[name] = (ann, _declared_range(ann) or ranges.get(name) or _convention(name), p.default)
    return out


def _declared_range(ann: Any) -> Range | None:
    """The :class:`Range` inside ``Annotated[...]`` (also as one arm of ``Annotated[...] | None``)."""
    for arm in (ann, *typing.get_args(ann)):
        if typing.get_origin(arm) is typing.Annotated:
            found = next((m for m in arm.__metadata__ if isinstance(m, Range)), None)
            if found is not None:
                return found
    return None


# -- checking one value -----------------------------------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _describe(tp: Any) -> str:
    """How an annotation reads in a message: 'an integer', 'a list of 2 numbers', ..."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _describe(args[0])
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        return " or ".join(_describe(a) for a in arms) + (" (or none)" if len(arms) < len(args) else "")
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(args[0])}"
        if args:
            return f"a list of {len(args)} {_plural(args[0]) if len(set(args)) == 1 else 'values'}"
        return "a list"
    if origin in (list, set, frozenset, cabc.Sequence, cabc.Set, cabc.MutableSequence, cabc.Collection, cabc.Iterable):
        return f"a list of {_plural(args[0])}" if args else "a list"
    if origin in (dict, cabc.Mapping, cabc.MutableMapping) or tp in (dict, cabc.Mapping):
        return "a table/mapping"
    if tp is os.PathLike or (inspect.isclass(tp) and issubclass(tp, os.PathLike)):
        return "a path"
    return f"a {getattr(tp, '__name__', str(tp))}"


def _plural(tp: Any) -> str:
    return {int: "integers", float: "numbers", str: "strings", bool: "booleans"}.get(tp, "values")


def _mismatch(value: Any, tp: Any) -> bool:
    """True when ``value`` certainly does not fit ``tp`` (unknown annotations never mismatch)."""
    if tp is Any or tp is object or isinstance(tp, (typing.TypeVar, typing.ForwardRef, str)):
        return False
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _mismatch(value, args[0])
    if origin in (typing.Union, types.UnionType):
        return all(_mismatch(value, a) for a in args)
    if tp is type(None):
        return value is not None
    if origin is typing.Literal:
        return value not in args or type(value) not in {type(a) for a in args}
    if tp is bool:
        return not isinstance(value, bool)
    if tp is int:
        return not _is_int(value)
    if tp is float or tp is complex:
        return not _is_number(value)
    if tp is str:
        return not isinstance(value, str)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return True
        if len(args) == 2 and args[1] is Ellipsis:
            return any(_mismatch(v, args[0]) for v in value)
        if args and args != ((),):
            return len(value) != len(args) or any(_mismatch(v, a) for v, a in zip(value, args))
        return False
    if origin in (list, set, frozenset, cabc.Sequence, cabc.MutableSequence, cabc.Set, cabc.Collection, cabc.Iterable):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
            return True
        return bool(args) and any(_mismatch(v, args[0]) for v in value)
    if origin in (dict, cabc.Mapping, cabc.MutableMapping):
        if not isinstance(value, cabc.Mapping):
            return True
        return len(args) == 2 and any(_mismatch(k, args[0]) or _mismatch(v, args[1]) for k, v in value.items())
    if origin is not None:  # other generics (Callable[...], ...): check the bare origin when it is a class
        return inspect.isclass(origin) and origin is not cabc.Callable and not isinstance(value, origin)
    if tp is cabc.Callable:
        return not callable(value)
    if inspect.isclass(tp):
        if issubclass(tp, os.PathLike):
            return not isinstance(value, (str, os.PathLike))
        return not isinstance(value, tp)
    return False


def _numbers(value: Any) -> list[float]:
    if _is_number(value):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if _is_number(v)]
    if isinstance(value, cabc.Mapping):
        return [v for v in value.values() if _is_number(v)]
    return []


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return f"{value!r} (a boolean)"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_value(
    where: str, option: str, value: Any, annotation: Any = Any, value_range: Range | None = None,
    default: Any = inspect.Parameter.empty,
) -> None:
    """Raise :class:`ConfigError` when ``value`` does not fit ``annotation`` or ``value_range``.

    ``where`` names the owner in the message (``"strategy 'darts'"``, ``"run"``, or ``""``); ``default``, when
    given, is quoted as the fix.
    """
    if value is None:
        return
    where = f"{where}: " if where else ""
    quiet = default is inspect.Parameter.empty or default is None or default is _FACTORY or callable(default)
    hint = "" if quiet else f"; the default is {default!r}"
    if _mismatch(value, annotation):
        if isinstance(value, str) and any(typing.get_origin(a) in (tuple, list, cabc.Sequence) for a in _arms(annotation)):
            hint = f"; write a list: {option}=[a,b]" + hint
        raise ConfigError(f"{where}option '{option}' expects {_describe(annotation)}, got {_shown(value)}{hint}")
    for v in _numbers(value):
        if not math.isfinite(v):
            raise ConfigError(f"{where}option '{option}' must be a finite number, got {v}{hint}")
        if value_range is not None and v not in value_range:
            raise ConfigError(f"{where}option '{option}' must be {value_range}, got {_shown(v)}{hint}")


def _arms(tp: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _arms(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return tuple(a for arm in typing.get_args(tp) for a in _arms(arm))
    return (tp,)


def check_options(where: str, factory: Callable[..., Any], options: Mapping[str, Any]) -> None:
    """Check every given option of ``factory`` against its declared type and range (unknown names are left to the
    factory's own check, which lists the valid ones)."""
    specs = option_specs(factory)
    for option, value in options.items():
        if option in specs:
            check_value(where, option, value, *specs[option])
