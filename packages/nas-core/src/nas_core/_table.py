"""Tabular benchmarks: ground-truth accuracy (and published proxy scores) by architecture string.

Sources:

* ``"analognas"``: AnalogNAS-Bench, the CIFAR-10 accuracy of all 15,625 NAS-Bench-201 cells (optional
  extra ``nas-core[analognas]``; read without running its unpickler, see :mod:`nas_core._analognas`);
* an official NATS-Bench / NAS-Bench-201 file through the ``nats_bench`` API;
* the NAS-Bench-Suite-Zero JSON layout in two shapes:

* ``{"meta": {...}, "rows": [{"arch": "|...|", "val_accuracy": 93.1, "proxies": {"synflow": ...}}, ...]}``
  (the project's shared data files);
* NASLib's ``zc_<space>.json``: ``{"cifar10": {"(arch tuple or string)": {"val_accuracy": ..,
  "<proxy>": {"score": .., "time": ..}}}}`` (pass ``dataset=``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from ._errors import DataError

__all__ = ["BenchmarkTable", "TableRow"]


@dataclass(frozen=True)
class TableRow:
    arch: str
    val_accuracy: float
    proxies: Mapping[str, float] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)


class BenchmarkTable:
    """An in-memory tabular benchmark keyed by canonical architecture string."""

    def __init__(self, rows: list[TableRow], *, meta: Mapping[str, Any] | None = None, source: str = ""):
        if not rows:
            raise DataError(f"benchmark table {source or '<memory>'} has no rows")
        self._rows: dict[str, TableRow] = {}
        for r in rows:
            self._rows[r.arch] = r
        self.meta = dict(meta or {})
        self.source = source
        self.registered_name = "table"
        self._sorted: np.ndarray | None = None

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, *, dataset: str | None = None) -> BenchmarkTable:
        """Read a table: ``"analognas"``, a JSON file (either layout), an AnalogNAS-Bench ``.anb`` file or an
        official NATS-Bench file. Errors name the file and what was expected. ``dataset`` selects one
        dataset of a multi-dataset file; a single-dataset table whose dataset differs is refused."""
        if str(path).strip().lower() in ANALOGNAS_NAMES:
            table = cls.from_analognas()
        else:
            path = Path(path)
            if not path.exists():
                raise DataError(
                    f"benchmark table '{path}' does not exist. Pass 'analognas' (every NB201 cell; pip install "
                    f"'nas-core[analognas]'), a NAS-Bench-Suite-Zero JSON file (e.g. nb201_cifar10.json) or an "
                    f"official NATS-Bench file with the nats_bench API installed."
                )
            if path.is_file() and path.suffix == ".anb":
                table = cls.from_analognas(path)
            elif path.name.endswith((".pth", ".pickle", ".pickle.pbz2")) or path.is_dir():
                return cls.from_nats(path, dataset=dataset or "cifar10")
            else:
                try:
                    data = json.loads(path.read_text())
                except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise DataError(f"benchmark table '{path}' is not readable JSON: {exc}") from exc
                table = cls.from_json(data, dataset=dataset, source=str(path))
        if dataset is not None and table.meta.get("dataset") and _norm_ds(dataset) != _norm_ds(table.meta["dataset"]):
            raise DataError(
                f"benchmark table {table.source} holds {table.meta['dataset']} accuracies, not {dataset}; pass a "
                f"{dataset} table (e.g. nb201_{_norm_ds(dataset)}.json) or drop --dataset"
            )
        return table

    @classmethod
    def from_analognas(cls, path: str | Path | None = None) -> BenchmarkTable:
        """AnalogNAS-Bench: CIFAR-10 accuracy after standard training of all 15,625 NB201 cells.

        ``path``: a ``data.anb`` file; default: the installed ``analog-nasbench`` package's file (found
        without importing the package; ``NAS_ANALOGNAS_FILE`` overrides it).
        """
        from ._analognas import load_analognas

        rows, meta = load_analognas(path)
        return cls([TableRow(arch=a, val_accuracy=acc, extra=extra) for a, acc, extra in rows], meta=meta,
                   source="analognas" if path is None else str(path))

    @classmethod
    def from_json(cls, data: Any, *, dataset: str | None = None, source: str = "") -> BenchmarkTable:
        if isinstance(data, Mapping) and "rows" in data:
            rows = []
            for i, r in enumerate(data["rows"]):
                try:
                    rows.append(
                        TableRow(
                            arch=str(r["arch"]),
                            val_accuracy=float(r["val_accuracy"]),
                            proxies={k: float(v) for k, v in (r.get("proxies") or {}).items() if v is not None},
                            extra={k: v for k, v in r.items() if k not in ("arch", "val_accuracy", "proxies")},
                        )
                    )
                except (KeyError, TypeError, ValueError) as exc:
                    raise DataError(f"benchmark table {source}: row {i} lacks 'arch'/'val_accuracy' ({exc})") from exc
            return cls(rows, meta=data.get("meta"), source=source)
        if isinstance(data, Mapping):
            datasets = [k for k, v in data.items() if isinstance(v, Mapping)]
            if dataset is None:
                if len(datasets) != 1:
                    raise DataError(
                        f"benchmark table {source} holds datasets {datasets}; pass dataset=... to choose one"
                    )
                dataset = datasets[0]
            if dataset not in data:
                raise DataError(f"benchmark table {source} has no dataset '{dataset}' (has: {', '.join(datasets)})")
            rows = []
            for arch, rec in data[dataset].items():
                proxies = {
                    k: float(v["score"]) for k, v in rec.items() if isinstance(v, Mapping) and "score" in v
                }
                rows.append(TableRow(arch=_naslib_arch(arch), val_accuracy=float(rec["val_accuracy"]), proxies=proxies))
            return cls(rows, meta={"dataset": dataset}, source=source)
        raise DataError(f"benchmark table {source}: expected a JSON object with 'rows' or dataset keys")

    @classmethod
    def from_nats(cls, path: str | Path, *, dataset: str = "cifar10", hp: str = "200") -> BenchmarkTable:
        """Read an official NATS-Bench / NAS-Bench-201 file through its API (``pip install nats_bench``)."""
        try:
            from nats_bench import create  # type: ignore[import-not-found]
        except ImportError as exc:
            raise DataError(
                f"'{path}' looks like an official NATS-Bench/NAS-Bench-201 file; reading it needs the nats_bench "
                f"API: pip install nats_bench. Or convert it to the NAS-Bench-Suite-Zero JSON layout."
            ) from exc
        api = create(str(path), "tss", fast_mode=True, verbose=False)
        rows = []
        for idx in range(len(api)):
            info = api.get_more_info(idx, "cifar10-valid" if dataset == "cifar10" else dataset, hp=hp, is_random=False)
            acc = info.get("valid-accuracy", info.get("valtest-accuracy"))
            rows.append(TableRow(arch=str(api.arch(idx)), val_accuracy=float(acc)))
        return cls(rows, meta={"dataset": dataset, "source": "nats_bench"}, source=str(path))

    # -- queries --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, arch: object) -> bool:
        return str(arch) in self._rows

    def __iter__(self) -> Iterator[TableRow]:
        return iter(self._rows.values())

    def archs(self) -> list[str]:
        return list(self._rows)

    def row(self, arch: Any) -> TableRow:
        key = str(arch)
        try:
            return self._rows[key]
        except KeyError:
            raise DataError(
                f"architecture {key} is not in benchmark table {self.source or '<memory>'} ({len(self)} rows); "
                f"search inside the table's candidate pool or use a table that covers the space"
            ) from None

    def accuracy(self, arch: Any) -> float:
        return self.row(arch).val_accuracy

    def proxy_names(self, complete: bool = False) -> list[str]:
        """Proxy names present in any row (``complete=True``: in every row)."""
        sets = [set(r.proxies) for r in self]
        names = set.intersection(*sets) if complete else set.union(*sets)
        return sorted(names)

    def proxy_matrix(self, names: list[str], archs: list[str] | None = None) -> np.ndarray:
        """``[len(archs), len(names)]`` published scores (NaN where absent)."""
        archs = archs if archs is not None else self.archs()
        out = np.full((len(archs), len(names)), np.nan)
        for i, a in enumerate(archs):
            p = self._rows[a].proxies
            for j, n in enumerate(names):
                v = p.get(n)
                if v is not None and math.isfinite(v):
                    out[i, j] = v
        return out

    def best(self) -> TableRow:
        return max(self._rows.values(), key=lambda r: r.val_accuracy)

    def sorted_accuracies(self) -> np.ndarray:
        """Every row's accuracy, ascending (cached)."""
        if self._sorted is None:
            self._sorted = np.sort(np.array([r.val_accuracy for r in self], dtype=np.float64))
        return self._sorted

    def fraction_above(self, accuracy: float) -> float:
        """Fraction of rows with strictly higher accuracy than ``accuracy`` (0.0 = the best)."""
        acc = self.sorted_accuracies()
        return float(acc.size - np.searchsorted(acc, accuracy, side="right")) / acc.size

    def percentile(self, arch: Any) -> float:
        """Fraction of rows with strictly higher accuracy (0.0 = best, 0.01 = top 1%)."""
        return self.fraction_above(self.accuracy(arch))

    def rank(self, arch: Any) -> int:
        """1 + the number of rows with strictly higher accuracy (1 = the best)."""
        acc = self.sorted_accuracies()
        return 1 + int(acc.size - np.searchsorted(acc, self.accuracy(arch), side="right"))

    def median(self) -> float:
        return float(np.median(self.sorted_accuracies()))

    def top_fraction(self, fraction: float) -> set[str]:
        """Architecture strings within the best ``fraction`` of the table (at least one)."""
        ranked = sorted(self._rows.values(), key=lambda r: -r.val_accuracy)
        k = max(1, int(math.ceil(fraction * len(ranked))))
        return {r.arch for r in ranked[:k]}


#: Names that select AnalogNAS-Bench in :meth:`BenchmarkTable.load`.
ANALOGNAS_NAMES = ("analognas", "analognasbench", "analog-nasbench", "analognas-bench")


def _norm_ds(name: str) -> str:
    """``cifar10-valid`` / ``CIFAR-10`` -> ``cifar10``."""
    n = str(name).lower().replace("-", "").replace("_", "")
    return n[: -len("valid")] if n.endswith("valid") else n


def _naslib_arch(key: str) -> str:
    """NASLib keys NB201 rows by op-index tuples like "(4, 2, 1, 3, 0, 4)"; keep strings as they are.

    NASLib's convention: op indices into (skip_connect, none, nor_conv_3x3, nor_conv_1x1, avg_pool_3x3),
    one per edge in the order (1,2), (1,3), (1,4), (2,3), (2,4), (3,4) of its 1-based nodes.
    """
    key = key.strip()
    if key.startswith("(") and key.endswith(")"):
        ops = ["skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3"]
        try:
            idx = [int(x) for x in key[1:-1].split(",") if x.strip()]
        except ValueError:
            return key
        if len(idx) == 6 and all(0 <= i < 5 for i in idx):
            o = [ops[i] for i in idx]
            return f"|{o[0]}~0|+|{o[1]}~0|{o[3]}~1|+|{o[2]}~0|{o[4]}~1|{o[5]}~2|"
    return key
