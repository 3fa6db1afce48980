"""``nas bench ARCH [--table analognas|FILE]``: look an architecture up in a tabular benchmark."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .._errors import ArchitectureError, DataError, UnknownNameError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("arch", help="architecture string (e.g. an NB201 '|op~0|+...' string) or a run directory")
    parser.add_argument(
        "--table", default="analognas",
        help="'analognas' (default: AnalogNAS-Bench, CIFAR-10 accuracy of all 15,625 NB201 cells; "
             "pip install 'nas-core[analognas]'), a NAS-Bench-Suite-Zero JSON (nb201_cifar10.json) or an "
             "official NATS-Bench file",
    )
    parser.add_argument("--dataset", help="dataset inside a multi-dataset table; refused when the table holds another")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _arch_text(arg: str) -> str:
    from ._common import load_run_result

    path = Path(arg)
    if len(arg) > 255 or not path.is_dir():
        return arg
    return load_run_result(path)["best"]  # a missing, damaged or incomplete result.json is a named error


def _canonical(text: str, table: Any) -> str:
    """Parse ``text`` with the table's space (a pointed error for a malformed string), canonical form back."""
    from .._factory import create_space

    space_name = table.meta.get("space") or ("nb201" if table.archs()[0].startswith("|") else None)
    if space_name is None:
        return text
    try:
        space = create_space(space_name)
    except UnknownNameError:
        return text  # the space's package is absent: exact lookup only
    try:
        return str(space.parse(text.strip()))
    except ArchitectureError as exc:
        raise ArchitectureError(f"'{text}' is not a {space_name} architecture: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from .._table import BenchmarkTable

    table = BenchmarkTable.load(args.table, dataset=args.dataset)
    arch = _canonical(_arch_text(args.arch), table)
    if arch not in table:
        raise DataError(
            f"{arch} is not in {table.source} ({len(table)} architectures): it covers only part of the space. "
            f"For every NB201 cell use --table analognas (pip install 'nas-core[analognas]')"
        )
    row = table.row(arch)
    rank = table.rank(arch)
    best = table.best()
    out = {
        "arch": row.arch, "val_accuracy": row.val_accuracy, "rank": rank, "of": len(table),
        "top_percent": 100.0 * (rank - 1) / len(table), "percentile": 100.0 * (1.0 - table.percentile(arch)),
        "median_in_table": table.median(), "best_in_table": best.val_accuracy, "best_arch": best.arch,
        "proxies": dict(row.proxies), "extra": dict(row.extra), "dataset": table.meta.get("dataset"),
        "table": table.source, "metric": table.meta.get("metric"),
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    ds = out["dataset"] or "table"
    print(row.arch)
    print(f"  accuracy {row.val_accuracy:.2f}% ({ds}, {table.source})")
    print(f"  rank {rank} of {len(table)}: top {out['top_percent']:.2f}%, better than "
          f"{100.0 * (len(table) - rank) / len(table):.2f}% of the table")
    print(f"  table median {out['median_in_table']:.2f}%, best {best.val_accuracy:.2f}% ({best.arch})")
    if row.extra:
        print("  other " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(row.extra.items())
                                           if isinstance(v, (int, float))))
    if row.proxies:
        print("  published proxies: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(row.proxies.items())))
    return 0


COMMAND = SimpleNamespace(add_arguments=add_arguments, run=run)
