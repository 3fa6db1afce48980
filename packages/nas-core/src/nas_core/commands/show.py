"""``nas show RUN_DIR``: print a run's summary and redraw its pictures."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

from .._errors import ConfigError
from ._common import fmt_count, read_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory written by nas search")
    parser.add_argument("--table", help="benchmark table for the fitness-vs-accuracy picture")


def run(args: argparse.Namespace) -> int:
    from .._factory import create_space
    from .._plots import draw_run
    from .._result import SearchResult
    from .._table import BenchmarkTable

    rd = Path(args.run_dir)
    if not (rd / "result.json").exists():
        raise ConfigError(f"'{rd}' has no result.json (not a finished run; resume it with nas search --resume {rd})")
    data = read_json(rd / "result.json")
    space = create_space(data["space"], **(data.get("space_config") or {}))
    result = SearchResult.from_json(data, space)
    table_path = args.table or ((read_json(rd / "config.json").get("run") or {}).get("table") if (rd / "config.json").exists() else None)
    from .._table import ANALOGNAS_NAMES

    named = isinstance(table_path, str) and table_path.strip().lower() in ANALOGNAS_NAMES
    table = BenchmarkTable.load(table_path) if isinstance(table_path, str) and (named or Path(table_path).exists()) else None
    pics = draw_run(rd, result=result, space=space, table=table)
    print(f"{rd}: {result.strategy} on {result.space} ({result.objective or result.proxy or 'table'}), seed {result.seed}")
    print(f"  best {result.best}")
    if result.cost:
        print(f"  cost {fmt_count(result.cost.get('params'))} params, {fmt_count(result.cost.get('flops'))} FLOPs")
    if result.extra.get("table_accuracy") is not None:
        print(f"  benchmark accuracy {result.extra['table_accuracy']:.2f}%")
    print(f"  candidates {len(result.candidates)}, history {len(result.history)} epochs")
    print("  pictures: " + (", ".join(str(p) for p in pics) or "none"))
    return 0


COMMAND = SimpleNamespace(add_arguments=add_arguments, run=run)
