"""Helpers shared by the built-in commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .._config import parse_value


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


def parse_sets(items: list[str] | None) -> list[tuple[str, Any]]:
    out = []
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--set expects KEY=VALUE (e.g. strategy.epochs=3), got {item!r}")
        k, _, v = item.partition("=")
        out.append((k.strip(), parse_value(v)))
    return out


def fmt_count(n: float | None) -> str:
    if n is None:
        return "?"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
