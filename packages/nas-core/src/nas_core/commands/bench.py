"""``nas bench ARCH --table FILE``: look an architecture up in a tabular benchmark."""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace

from .._errors import DataError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("arch", help="architecture string (e.g. an NB201 '|op~0|+...' string) or a run directory")
    parser.add_argument("--table", required=True, help="NAS-Bench-Suite-Zero JSON (nb201_cifar10.json) or an official NATS-Bench file")
    parser.add_argument("--dataset", help="dataset inside a multi-dataset table")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .._table import BenchmarkTable

    table = BenchmarkTable.load(args.table, dataset=args.dataset)
    arch = args.arch
    if Path(arch).is_dir():
        arch = json.loads((Path(arch) / "result.json").read_text())["best"]
    if arch not in table:
        raise DataError(f"{arch} is not in {args.table} ({len(table)} architectures); it covers only part of the space")
    row = table.row(arch)
    rank = 1 + sum(1 for r in table if r.val_accuracy > row.val_accuracy)
    out = {"arch": row.arch, "val_accuracy": row.val_accuracy, "rank": rank, "of": len(table),
           "top_percent": 100.0 * (rank - 1) / len(table), "best_in_table": table.best().val_accuracy,
           "proxies": dict(row.proxies), "dataset": table.meta.get("dataset")}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{row.arch}")
    print(f"  validation accuracy {row.val_accuracy:.2f}% ({out['dataset'] or 'table'}): rank {rank} of {len(table)} "
          f"(top {out['top_percent']:.1f}%), best in table {out['best_in_table']:.2f}%")
    if row.proxies:
        print("  published proxies: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(row.proxies.items())))
    return 0


COMMAND = SimpleNamespace(add_arguments=add_arguments, run=run)
