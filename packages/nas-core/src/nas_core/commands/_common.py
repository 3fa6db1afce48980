"""Helpers shared by the built-in commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._config import parse_value
from .._errors import ConfigError
from .._io import read_json


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("runtime")
    g.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1, mps")
    g.add_argument("--precision", default=None, choices=["fp32", "bf16"], help="bf16 autocast or fp32 (default)")
    g.add_argument("--seed", type=int, default=None, help="run seed (default 0)")
    g.add_argument("--threads", type=threads_arg, default=None, metavar="N|auto",
                   help="CPU threads of torch (default auto: the CPUs this process may use that other processes "
                        "leave idle)")
    g.add_argument("--no-progress", action="store_true",
                   help="no progress bars; one line per epoch or generation instead (the default without a terminal)")


def threads_arg(text: str) -> int | str:
    """``--threads`` values: ``auto`` or a positive integer."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}")
    return n


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip-corrupt", action="store_true",
                        help="skip unreadable images of an image folder (they are counted and named) instead of stopping")
    parser.add_argument("--download", action="store_true",
                        help="download a torchvision dataset (cifar10, svhn, ...) into $NAS_DATA_ROOT when it is missing")


def parse_sets(items: list[str] | None, flag: str = "--set") -> list[tuple[str, Any]]:
    out = []
    for item in items or []:
        k, eq, v = item.partition("=")
        if not eq or not k.strip():
            raise ConfigError(f"{flag} expects KEY=VALUE (e.g. {'strategy.epochs=3' if flag == '--set' else 'channels=16'}), got {item!r}")
        out.append((k.strip(), parse_value(v)))
    return out


def fmt_count(n: float | None) -> str:
    if n is None:
        return "?"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


def load_run_result(run_dir: Path) -> dict[str, Any]:
    """``run_dir/result.json`` checked: a missing, damaged or incomplete file is a named error."""
    path = run_dir / "result.json"
    if not path.exists():
        raise ConfigError(f"'{run_dir}' has no result.json: the search did not finish (resume it with nas search --resume {run_dir})")
    data = read_json(path, what="run result")
    missing = [k for k in ("best", "space") if not isinstance(data.get(k), str)]
    if missing:
        raise ConfigError(f"run result '{path}' lacks {' and '.join(repr(k) for k in missing)}: the file is damaged or not a nas result")
    if not isinstance(data.get("space_config") or {}, dict):
        raise ConfigError(f"run result '{path}': 'space_config' must be a mapping: the file is damaged")
    return data


def load_run_config(run_dir: Path) -> dict[str, Any]:
    """``run_dir/config.json`` checked (``{}`` when there is none)."""
    path = run_dir / "config.json"
    return read_json(path, what="run configuration") if path.exists() else {}


def create_space_checked(name: str, options: Any, where: str = "") -> Any:
    """``create_space(name, **options)`` with the options checked against the space's declared types first."""
    from .._factory import create_space, get_entry
    from .._options import check_options

    options = dict(options or {})
    entry = get_entry("space", name)
    check_options(f"space '{entry.name}'{where}", entry.load(), options)
    return create_space(name, **options)
