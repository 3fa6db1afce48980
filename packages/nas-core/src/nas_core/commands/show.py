"""``nas show RUN_DIR``: print a run's summary and redraw its pictures."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

from .._errors import ConfigError
from ._common import create_space_checked, fmt_count, load_run_config, load_run_result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory written by nas search")
    parser.add_argument("--table", help="benchmark table for the fitness-vs-accuracy picture")


def run(args: argparse.Namespace) -> int:
    from .._plots import draw_run
    from .._result import SearchResult
    from .._rundir import refuse_links
    from .._table import BenchmarkTable

    rd = Path(args.run_dir)
    if not rd.is_dir():
        raise ConfigError(f"'{rd}' is not a directory; give a run directory written by nas search")
    data = load_run_result(rd)
    refuse_links(rd)  # the pictures are redrawn in it
    space = create_space_checked(data["space"], data.get("space_config"), f" (from {rd / 'result.json'})")
    result = SearchResult.from_json(data, space, source=str(rd / "result.json"))
    table_path = args.table or (load_run_config(rd).get("run") or {}).get("table")
    from .._table import ANALOGNAS_NAMES

    named = isinstance(table_path, str) and table_path.strip().lower() in ANALOGNAS_NAMES
    if args.table and not named and not Path(args.table).exists():
        raise ConfigError(f"--table '{args.table}' does not exist (give a table file, or analognas)")
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
