"""Run configuration files (TOML or YAML) and command-line overrides.

Layout (TOML; YAML has the same shape)::

    [run]                 # run options: data, img_size, limit, seed, device, precision, run_dir, table, trackers
    data = "digits"
    seed = 0

    [space]
    name = "nb201"        # every other key is an option of the space
    channels = 16

    [objective]
    name = "mim"
    mask_ratio = 0.5

    [strategy]
    name = "darts"
    epochs = 50

Shorthands: ``space = "nb201"`` at top level equals ``[space] name = "nb201"``; top-level run keys go to ``[run]``.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Mapping

from ._errors import ConfigError
from ._io import read_json

__all__ = ["load_config", "apply_override", "parse_value", "merge_config"]

SECTIONS = ("run", "space", "objective", "strategy", "proxy")


def parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"true"`` -> True, ``"[1, 2]"`` -> [1, 2], ``"[a, b]"`` -> ["a", "b"],
    anything else stays a string."""
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    if t.lower() in ("none", "null"):
        return None
    try:
        return json.loads(t)
    except (json.JSONDecodeError, RecursionError):
        pass
    if len(t) >= 2 and t[0] == "[" and t[-1] == "]" and "[" not in t[1:-1] and "]" not in t[1:-1]:
        inner = t[1:-1].strip()
        return [parse_value(item) for item in inner.split(",")] if inner else []
    return t


def _normalise(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    from ._search import RUN_KEYS

    cfg: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith("_"):  # a run's own bookkeeping in config.json (_seed, _fingerprint)
            continue
        if key in SECTIONS[1:] and isinstance(value, str):
            cfg.setdefault(key, {})["name"] = value
        elif key in SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: section '{key}' must be a table/mapping, got {type(value).__name__}")
            cfg.setdefault(key, {}).update(value)
        elif key in RUN_KEYS:
            cfg.setdefault("run", {})[key] = value
        else:
            raise ConfigError(
                f"{source}: unknown top-level key '{key}' (sections: {', '.join(SECTIONS)}; run keys: {', '.join(RUN_KEYS)})"
            )
    for sec in SECTIONS[1:]:
        if sec in cfg and "name" not in cfg[sec]:
            raise ConfigError(f"{source}: section [{sec}] needs a 'name' (e.g. name = \"...\")")
    unknown_run = set(cfg.get("run", {})) - set(RUN_KEYS)
    if unknown_run:
        raise ConfigError(f"{source}: unknown option(s) in [run]: {', '.join(sorted(unknown_run))} (valid: {', '.join(RUN_KEYS)})")
    return cfg


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) run configuration; errors name the file and the key."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file '{path}' does not exist")
    if path.suffix.lower() not in (".toml", ".yaml", ".yml", ".json"):
        raise ConfigError(f"config file '{path}': use .toml, .yaml/.yml or .json")
    if path.suffix.lower() == ".json":
        return _normalise(read_json(path, what="config file"), str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file '{path}' cannot be read ({type(exc).__name__}: {exc})") from exc
    if path.suffix.lower() == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file '{path}' is not valid TOML: {exc}") from exc
    else:
        try:
            import yaml
        except ImportError as exc:
            raise ConfigError(f"reading '{path}' needs PyYAML: pip install 'nas-core[yaml]' (or use TOML)") from exc
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file '{path}' is not valid YAML: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config file '{path}' must hold a mapping at the top level")
    return _normalise(raw, str(path))


def apply_override(cfg: dict[str, Any], key: str, value: Any) -> None:
    """``strategy.epochs=3`` sets ``cfg["strategy"]["epochs"]``; ``seed=1`` sets a run key; ``epochs=3`` is
    routed later to whichever component accepts it (kept in ``cfg["_flat"]``)."""
    from ._search import RUN_KEYS

    if key in SECTIONS[1:]:  # --set space=vit: the shorthand of space.name=vit, as in config files
        key = f"{key}.name"
    if "." in key:
        sec, _, opt = key.partition(".")
        if sec not in SECTIONS:
            raise ConfigError(f"override '{key}': '{sec}' is not a section ({', '.join(SECTIONS)})")
        if not opt:
            raise ConfigError(f"override '{key}': no option after '{sec}.' (e.g. {sec}.name=...)")
        if sec == "run" and opt not in RUN_KEYS:
            close = difflib.get_close_matches(opt, RUN_KEYS, n=1)
            raise ConfigError(
                f"override '{key}': '{opt}' is not a run option (valid: {', '.join(RUN_KEYS)})"
                + (f". Did you mean 'run.{close[0]}'?" if close else "")
            )
        if opt == "name":
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"override '{key}': the {sec} name must be a non-empty string, got {value!r}")
            current = (cfg.get(sec) or {}).get("name")
            if current not in (None, value):
                raise ConfigError(f"override '{key}={value}' contradicts --{sec} {current}; give the {sec} once")
        cfg.setdefault(sec, {})[opt] = value
    elif key == "run":
        raise ConfigError(f"override '{key}': 'run' is a section; set one of its options (run.seed=1, ...)")
    elif key in RUN_KEYS:
        cfg.setdefault("run", {})[key] = value
    else:
        cfg.setdefault("_flat", {})[key] = value


def merge_config(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in base.items()}
    for k, v in override.items():
        if isinstance(v, Mapping):
            if k in SECTIONS[1:] and "name" in v and out.get(k, {}).get("name") not in (None, v["name"]):
                out[k] = dict(v)  # a different component: its options do not carry over
            else:
                out.setdefault(k, {}).update(v)
        else:
            out[k] = v
    return out
