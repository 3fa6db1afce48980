"""AnalogNAS-Bench as a table: the safe loader, the op/edge mapping, `nas bench` on the whole space."""

from __future__ import annotations

import io
import json
import pickle
import sys
import types

import numpy as np
import pytest

from nas_core import BenchmarkTable, DataError
from nas_core._analognas import ANALOGNAS_OPS, read_analognas, tuple_to_nb201
from nas_core.cli import main

BEST_KNOWN = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


# ---------------------------------------------------------------------------------------------
# the restricted unpickler (no package needed: files are crafted with stand-in classes)
# ---------------------------------------------------------------------------------------------
def _fake_package_pickle(records: dict) -> bytes:
    """Pickle ``records`` ({key: {attr: value}}) as instances of ``analognasbench.data`` classes.

    The classes live in a stand-in module whose name has the same length (so the pickle's framing stays
    valid when the name is rewritten) and the real package is never imported.
    """
    stand_in = "analognasbench_data"
    assert len(stand_in) == len("analognasbench.data")
    mod = types.ModuleType(stand_in)

    class Architecture:
        pass

    class DriftMeasurement:
        pass

    for cls in (Architecture, DriftMeasurement):
        cls.__module__ = stand_in
        cls.__qualname__ = cls.__name__
        setattr(mod, cls.__name__, cls)
    sys.modules[stand_in] = mod
    try:
        out = {}
        for key, attrs in records.items():
            a = Architecture()
            for k, v in attrs.items():
                if k.startswith("baseline_drift"):
                    d = DriftMeasurement()
                    d.value, d.uncertainty = v, 0.0
                    v = d
                setattr(a, k, v)
            out[key] = a
        data = pickle.dumps(out, protocol=4)
    finally:
        del sys.modules[stand_in]
    return data.replace(stand_in.encode(), b"analognasbench.data")


def test_safe_loader_reads_the_package_record_classes(tmp_path):
    data = _fake_package_pickle({
        (2, 1, 2, 1, 1, 2): {"architecture": (2, 1, 2, 1, 1, 2), "baseline_accuracy": 91.5, "analog_accuracy": 80.0,
                             "baseline_drift_60": 1.5},
        (1, 1, 1, 1, 1, 1): {"architecture": (1, 1, 1, 1, 1, 1), "baseline_accuracy": 10.0},
    })
    assert set(read_analognas(data)) == {(2, 1, 2, 1, 1, 2), (1, 1, 1, 1, 1, 1)}
    path = tmp_path / "data.anb"
    path.write_bytes(data)
    table = BenchmarkTable.load(path)
    assert len(table) == 2
    assert table.accuracy(ALL_NONE) == 10.0
    conv = "|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|nor_conv_3x3~2|"
    assert table.accuracy(conv) == 91.5 and table.row(conv).extra == {"analog_accuracy": 80.0}
    assert table.meta["dataset"] == "cifar10"


class _Boom:
    """A global that would run code when unpickled."""

    ran = False

    def __reduce__(self):
        return (_set_ran, ())


def _set_ran():
    _Boom.ran = True
    return {}


@pytest.mark.parametrize("payload", [
    lambda: pickle.dumps(_Boom()),                                  # a REDUCE of a foreign callable
    lambda: pickle.dumps({(0,) * 6: print}),                        # a builtin function object
    lambda: b"cos\nsystem\n(S'echo pwned'\ntR.",                    # the classic protocol-0 exploit
    lambda: pickle.dumps({(0,) * 6: types.SimpleNamespace(a=1)}),  # a harmless but foreign class
])
def test_safe_loader_refuses_any_other_global(tmp_path, payload):
    _Boom.ran = False
    path = tmp_path / "data.anb"
    path.write_bytes(payload())
    with pytest.raises(DataError, match="refusing to load") as err:
        BenchmarkTable.load(path)
    assert "analognasbench.data.Architecture" in str(err.value)  # says what is admitted
    assert not _Boom.ran


def test_safe_loader_names_a_truncated_file(tmp_path):
    data = _fake_package_pickle({(1,) * 6: {"baseline_accuracy": 10.0}})
    path = tmp_path / "data.anb"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="not a readable AnalogNAS-Bench file"):
        BenchmarkTable.load(path)


def test_missing_package_says_how_to_install(monkeypatch):
    import nas_core._analognas as mod

    monkeypatch.delenv("NAS_ANALOGNAS_FILE", raising=False)
    monkeypatch.setattr(mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install 'nas-core\[analognas\]'"):
        BenchmarkTable.load("analognas")


def test_key_mapping_covers_every_edge_once():
    # one op per position: each position must land on a distinct edge of the NB201 string
    seen = set()
    for pos in range(6):
        key = [1] * 6
        key[pos] = 2  # nor_conv_3x3 on one edge, none elsewhere
        s = tuple_to_nb201(tuple(key))
        assert s.count("nor_conv_3x3") == 1
        seen.add(s)
    assert len(seen) == 6
    assert tuple_to_nb201((1, 1, 1, 1, 1, 1)) == ALL_NONE
    assert ANALOGNAS_OPS[0] == "skip_connect" and tuple_to_nb201((0,) * 6) == ALL_SKIP


# ---------------------------------------------------------------------------------------------
# the real file: mapping pinned by evidence, nas bench on the whole space
# ---------------------------------------------------------------------------------------------
def test_mapping_ranks_the_shared_rows_like_nb201(analognas, shared_data):
    from scipy.stats import spearmanr

    shared = BenchmarkTable.load(shared_data / "nb201_cifar10.json")
    assert len(analognas) == 15625 and len(set(analognas.archs())) == 15625
    archs = shared.archs()
    ours = [analognas.accuracy(a) for a in archs]
    theirs = [shared.accuracy(a) for a in archs]
    rho = spearmanr(ours, theirs).statistic
    assert rho > 0.97, rho
    # a wrong mapping (edges 2<-1 and 3<-0 swapped, the closest alternative) ranks clearly worse
    import re

    def swapped(a):
        ops = re.findall(r"([a-z_0-9]+)~\d", a)
        ops[2], ops[3] = ops[3], ops[2]
        return f"|{ops[0]}~0|+|{ops[1]}~0|{ops[2]}~1|+|{ops[3]}~0|{ops[4]}~1|{ops[5]}~2|"

    rho_wrong = spearmanr([analognas.accuracy(swapped(a)) for a in archs], theirs).statistic
    assert rho_wrong < rho - 0.05


def test_landmark_cells_land_where_expected(analognas):
    assert analognas.percentile(BEST_KNOWN) < 0.001  # NB201's best CIFAR-10 cell: top 0.1%
    assert analognas.accuracy(ALL_NONE) < 15.0  # no path from input to output: chance
    assert analognas.percentile(ALL_SKIP) > 0.9  # parameter-free: bottom 10%
    assert 85.0 < analognas.median() < 93.0
    assert analognas.best().val_accuracy > 93.5


def test_nas_bench_reports_percentile_in_the_whole_space(analognas, capsys):
    assert main(["bench", BEST_KNOWN, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["of"] == 15625 and out["rank"] <= 5 and out["top_percent"] < 0.05
    assert out["val_accuracy"] == pytest.approx(analognas.accuracy(BEST_KNOWN))
    assert main(["bench", ALL_SKIP, "--table", "analognas"]) == 0
    text = capsys.readouterr().out
    assert "of 15625" in text and "median" in text


@pytest.mark.parametrize("argv, needle, parses", [
    (["bench", BEST_KNOWN.replace("nor_conv_3x3~2", "nor_conv_9x9~2")], "unknown op 'nor_conv_9x9'", True),
    (["bench", "|none~0|+|none~0|"], "expected 3", True),
    (["bench", "|none~0|+|none~0|"], "covers only part of the space", False),
    (["bench", BEST_KNOWN, "--dataset", "cifar100"], "holds cifar10 accuracies, not cifar100", None),
])
def test_nas_bench_names_the_wrong_part(analognas, capsys, argv, needle, parses):
    # with nas-spaces installed the string is parsed (the error points at the bad edge); without it, exact lookup
    try:
        import nas_spaces  # noqa: F401
        have_spaces = True
    except ImportError:
        have_spaces = False
    if parses is not None and parses != have_spaces:
        pytest.skip("case for the " + ("nas-spaces" if parses else "nas-core-only") + " environment")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_nas_bench_names_a_damaged_run_result(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "result.json").write_text("{damaged")
    (tmp_path / "t.json").write_text(json.dumps({"rows": [{"arch": "a", "val_accuracy": 1.0}]}))
    capsys.readouterr()
    assert main(["bench", str(run), "--table", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err
    assert "result.json" in err and "not valid JSON" in err and "Traceback" not in err


def test_pictures_replace_a_planted_link_and_never_write_through_it(tmp_path):
    from nas_core._plots import draw_cells

    target = tmp_path / "elsewhere.png"
    target.write_bytes(b"precious")
    link = tmp_path / "cells.png"
    link.symlink_to(target)
    draw_cells({"cell": [("in", "out", "conv")]}, link, title="t")
    assert target.read_bytes() == b"precious"
    assert not link.is_symlink() and link.read_bytes()[:4] == b"\x89PNG"
