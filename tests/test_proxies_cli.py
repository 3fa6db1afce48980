"""`nas proxies` end to end on the real NB201 space (tiny widths)."""

from __future__ import annotations

import csv
import json

import pytest

pytest.importorskip("nas_spaces")
pytest.importorskip("nas_proxies")

from nas_core.cli import main  # noqa: E402

TINY = ["--space", "nb201", "-o", "channels=4", "-o", "num_cells=1", "--batch", "8", "--img-size", "16"]


@pytest.mark.shared_data
def test_proxies_command_with_a_table(tmp_path, shared_data):
    out = tmp_path / "run"
    rc = main(["proxies", *TINY, "--sample", "6", "--table", str(shared_data / "nb201_cifar10.json"),
               "--proxies", "synflow,params,flops,jacov,grad_norm,nwot", "--unified", "selected", "--out", str(out)])
    assert rc == 0
    rows = list(csv.DictReader((out / "proxies.csv").open()))
    assert len(rows) == 6 and len({r["arch"] for r in rows}) == 6
    assert list(rows[0])[:3] == ["arch", "val_accuracy", "synflow"] and "unified" in rows[0]
    assert all(float(r["val_accuracy"]) > 0 for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["kendall_tau"]) == {"synflow", "params", "flops", "jacov", "grad_norm", "nwot", "unified"}
    from scipy.stats import kendalltau

    for p in ("params", "synflow"):  # the summary's tau is the rows' tau against the table's accuracy
        want = kendalltau([float(r[p]) for r in rows], [float(r["val_accuracy"]) for r in rows]).statistic
        assert summary["kendall_tau"][p] == pytest.approx(want), p
    png = (out / "correlation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_proxies_command_without_a_table_draws_a_heatmap(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["proxies", *TINY, "--sample", "4", "--data", "random", "--proxies", "snip,zen,epe_nas", "--out", str(out)])
    assert rc == 0
    rows = list(csv.DictReader((out / "proxies.csv").open()))
    assert len(rows) == 4 and "val_accuracy" not in rows[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["spearman"]["snip"]["snip"] == pytest.approx(1.0)
    assert "pseudo-classes" in summary["loss"]
    assert (out / "correlation.png").stat().st_size > 5_000


def test_proxies_command_reports_bad_options(tmp_path, capsys):
    rc = main(["proxies", *TINY, "--sample", "2", "--proxies", "synflw", "--out", str(tmp_path)])
    assert rc == 2
    assert "Did you mean 'synflow'" in capsys.readouterr().err
