"""`nas proxies` end to end on the real NB201 space (tiny widths)."""

from __future__ import annotations

import csv
import json

import pytest

pytest.importorskip("nas_spaces")
pytest.importorskip("nas_proxies")

from nas_core import Proxy, hookimpl  # noqa: E402
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


class Widest(Proxy):
    """A third party's proxy: the widest layer's channel count (data-free)."""

    data_free = True

    def score(self, net, images, targets=None, *, loss_fn=None):
        return float(max(m.out_channels for m in net.modules() if hasattr(m, "out_channels")))


class WidestPlugin:
    @hookimpl
    def nas_register_proxies(self, registry):
        registry.add("widest_test", Widest, summary="test plugin's proxy", data_free=True)


@pytest.fixture
def widest_plugin():
    import nas_core

    name = nas_core.register_plugin(WidestPlugin(), "widest-test-plugin")
    yield
    nas_core.unregister_plugin(name)


def test_a_third_party_proxy_is_scored_by_name_and_by_default(tmp_path, capsys, widest_plugin):
    out = tmp_path / "named"
    assert main(["proxies", *TINY, "--sample", "3", "--data", "random", "--proxies", "params,widest_test", "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "proxies.csv").open()))
    assert [r["widest_test"] for r in rows] == ["16.0"] * 3  # channels=4: the last stage has 4 x 4 channels
    err = capsys.readouterr().err
    assert f"to {out}/" in err, "nas proxies says where it writes"

    import nas_core

    default = [e.name for e in nas_core.get_plugin_manager().registry("proxy") if not e.metadata.get("composite")]
    assert "widest_test" in default and "unified" not in default
    out = tmp_path / "default"
    assert main(["proxies", *TINY, "--sample", "2", "--data", "random", "--out", str(out)]) == 0
    header = next(csv.reader((out / "proxies.csv").open()))
    assert set(default) <= set(header), "the default list is every registered proxy"


def test_without_nas_proxies_the_command_names_its_distribution(nas_plugins, capsys):
    # an isolated manager without entry points: nas-core's own commands only, as if nas-proxies were not installed
    assert main(["proxies", "--sample", "2"]) == 2
    err = capsys.readouterr().err
    assert "'proxies' is a command of nas-proxies, which is not installed: pip install" in err
    assert "invalid choice" not in err
