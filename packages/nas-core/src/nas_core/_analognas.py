"""AnalogNAS-Bench as a benchmark table: the CIFAR-10 accuracy of all 15,625 NAS-Bench-201 cells.

AnalogNAS-Bench (PyPI ``analog-nasbench``, IBM's analog-nas repository, which declares Apache-2.0; the
distribution's own metadata names no licence) trains every NB201 cell on CIFAR-10. Its
``baseline_accuracy`` - full standard (digital) training - is the ground truth used here; the analog,
quantised and noisy accuracies are kept in each row's ``extra``.

The package's own loader unpickles its data file, which would run whatever the file names. This module
never imports the package: it finds ``analognasbench/data.anb`` through the import system's spec (no code
runs) and reads it with an unpickler that admits exactly the two plain record classes the file is made of
(``analognasbench.data.Architecture`` and ``DriftMeasurement``), mapped onto inert local classes. Any
other global in the file is refused with :class:`nas_core.DataError` before it is resolved.

The file keys rows by a 6-tuple of op indices. Neither order is documented; they were established from
the data (``tests``: with this mapping the accuracy ranks the 1104 NAS-Bench-Suite-Zero rows like NB201's
validation accuracy, Spearman 0.979, against <= 0.96 for every other of the 86,400 op/edge orders):

* ops, index 0..4: ``skip_connect, none, nor_conv_3x3, nor_conv_1x1, avg_pool_3x3`` (NASLib's order);
* edges, tuple position 0..5: ``1<-0, 2<-0, 3<-0, 2<-1, 3<-1, 3<-2`` (NASLib's ``(1,2), (1,3), (1,4),
  (2,3), (2,4), (3,4)`` of its 1-based nodes), while the NB201 string lists ``1<-0 | 2<-0 2<-1 |
  3<-0 3<-1 3<-2``.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import math
import os
import pickle
from pathlib import Path
from typing import Any

from ._errors import DataError

__all__ = ["ANALOGNAS_OPS", "ANALOGNAS_EDGES", "analognas_file", "load_analognas", "read_analognas", "tuple_to_nb201"]

#: Op names by AnalogNAS-Bench op index.
ANALOGNAS_OPS: tuple[str, ...] = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
#: ``(to_node, from_node)`` of each position of an AnalogNAS-Bench key.
ANALOGNAS_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (3, 0), (2, 1), (3, 1), (3, 2))

_INSTALL_HINT = (
    "AnalogNAS-Bench (all 15,625 NB201 cells) is an optional extra: pip install 'nas-core[analognas]' "
    "(or pip install analog-nasbench), or pass the path of its data.anb file"
)
#: The metrics copied from each record into the row (``baseline_accuracy`` becomes ``val_accuracy``).
_EXTRA_METRICS = ("ptq_accuracy", "qat_accuracy", "noisy_accuracy", "analog_accuracy")


class _Record:
    """Inert stand-in for the package's record classes: holds the attributes the file sets, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # called only by a REDUCE/NEWOBJ opcode
        pass

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"unexpected record state of type {type(state).__name__}")
        self.__dict__.update({str(k): v for k, v in state.items()})


class _Architecture(_Record):
    pass


class _DriftMeasurement(_Record):
    pass


_ALLOWED = {
    ("analognasbench.data", "Architecture"): _Architecture,
    ("analognasbench.data", "DriftMeasurement"): _DriftMeasurement,
}


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, source: str):
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        cls = _ALLOWED.get((module, name))
        if cls is None:
            raise DataError(
                f"{self._source} names the global '{module}.{name}', which an AnalogNAS-Bench data file never "
                f"holds; refusing to load it (only {', '.join(f'{m}.{n}' for m, n in _ALLOWED)} are admitted). "
                f"Reinstall the package (pip install --force-reinstall analog-nasbench) if the file was replaced"
            )
        return cls


def analognas_file() -> Path:
    """The installed package's ``data.anb``, located without importing the package."""
    env = os.environ.get("NAS_ANALOGNAS_FILE")
    if env:
        return Path(env)
    try:
        spec = importlib.util.find_spec("analognasbench")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the 'analognas' table needs the analog-nasbench package, which is not installed. {_INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "data.anb"
        if candidate.is_file():
            return candidate
    raise DataError(f"analog-nasbench is installed but its data.anb is missing. {_INSTALL_HINT}")


def tuple_to_nb201(key: tuple[int, ...]) -> str:
    """The NB201 cell string of an AnalogNAS-Bench key."""
    if len(key) != 6 or not all(isinstance(i, int) and 0 <= i < len(ANALOGNAS_OPS) for i in key):
        raise DataError(f"AnalogNAS-Bench key {key!r} is not a 6-tuple of op indices 0..4")
    op = {edge: ANALOGNAS_OPS[i] for edge, i in zip(ANALOGNAS_EDGES, key)}
    nodes = ["|".join(f"{op[(to, frm)]}~{frm}" for frm in range(to)) for to in (1, 2, 3)]
    return "|" + "|+|".join(nodes) + "|"


def read_analognas(data: bytes, *, source: str = "data.anb") -> dict[tuple[int, ...], Any]:
    """Unpickle AnalogNAS-Bench bytes with the restricted unpickler (no code runs)."""
    try:
        obj = _SafeUnpickler(io.BytesIO(data), source).load()
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any malformed pickle
        raise DataError(f"{source} is not a readable AnalogNAS-Bench file: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{source} holds a {type(obj).__name__}, not the AnalogNAS-Bench dict of records")
    return obj


def _float(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


@functools.lru_cache(maxsize=4)
def _rows_from(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, float, dict[str, float]], ...]:
    data = Path(path).read_bytes()
    records = read_analognas(data, source=path)
    rows = []
    for key, rec in records.items():
        if not isinstance(rec, _Architecture):
            raise DataError(f"{path}: the record of {key!r} is a {type(rec).__name__}, not an Architecture")
        acc = _float(getattr(rec, "baseline_accuracy", None))
        if acc is None:
            raise DataError(f"{path}: architecture {key!r} has no finite baseline_accuracy")
        extra = {m: v for m in _EXTRA_METRICS if (v := _float(getattr(rec, m, None))) is not None}
        rows.append((tuple_to_nb201(tuple(key)), acc, extra))
    return tuple(rows)


def load_analognas(path: str | Path | None = None) -> tuple[list[tuple[str, float, dict[str, float]]], dict[str, Any]]:
    """``(rows, meta)``: ``(nb201 string, CIFAR-10 accuracy, extra metrics)`` for every cell in the file."""
    p = Path(path) if path is not None else analognas_file()
    try:
        st = p.stat()
    except OSError as exc:
        raise DataError(f"AnalogNAS-Bench file '{p}' cannot be read: {exc}. {_INSTALL_HINT}") from exc
    rows = list(_rows_from(str(p), st.st_mtime_ns, st.st_size))
    meta = {
        "dataset": "cifar10",
        "space": "nb201",
        "source": "AnalogNAS-Bench (analog-nasbench; IBM analog-nas, Apache-2.0)",
        "metric": "CIFAR-10 accuracy after full standard training (AnalogNAS-Bench baseline_accuracy)",
        "file": str(p),
    }
    return rows, meta
