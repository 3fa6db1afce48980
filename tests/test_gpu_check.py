"""bench/gpu_check.py, the one-shot device check, cannot rot: its CPU smoke mode runs here and its JSON is checked;
a failing item is recorded and the run goes on; the time budget stops it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

import nas_core

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gpu_check", mod)
    spec.loader.exec_module(mod)
    return mod


gpu_check = _load()


def test_quick_cpu_run_covers_every_component_in_both_precisions(tmp_path):
    out = tmp_path / "check.json"
    assert gpu_check.main(["--device", "cpu", "--quick", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["finished"] and data["meta"]["quick"] and data["meta"]["device"] == "cpu"
    combos = data["combinations"]
    # every registered triple is listed, run or refused
    assert {(r["objective"], r["strategy"], r["space"]) for r in combos} == set(gpu_check.matrix())
    ran = [r for r in combos if r["status"] not in ("refused", "not run (quick)")]
    assert ran and all(r["status"] == "ok" for r in ran), [(r["objective"], r["strategy"], r["space"], r.get("error")) for r in ran if r["status"] != "ok"]
    for field in ("objective", "strategy", "space"):
        compatible = {r[field] for r in combos if r["status"] != "refused"}
        assert compatible == {r[field] for r in ran}, f"the cross-section misses a {field}"
    for precision in gpu_check.PRECISIONS:
        rows = [r for r in ran if r["precision"] == precision]
        assert len(rows) == len(ran) // 2
        assert all(r["steps"] >= 2 and r["images_per_s"] > 0 and r["wall_s"] > 0 for r in rows)
    refused = [r for r in combos if r["status"] == "refused"]
    assert refused and all(f"'{r['strategy']}'" in r["error"] or f"'{r['objective']}'" in r["error"] for r in refused)
    # every proxy ran in both precisions (or is a fitted combination, skipped with the reason)
    proxies = {(r["proxy"], r["precision"]): r for r in data["proxies"]}
    assert {name for name, _ in proxies} == set(nas_core.list_proxies())
    for (name, _), r in proxies.items():
        assert r["status"] == "ok" or (r["status"] == "skipped" and "fit" in r["error"]), (name, r.get("error"))
    assert sum(r["status"] == "ok" for r in proxies.values()) >= 2 * 13
    summary = data["summary"]
    assert summary["targets"]["every_run_combination_ok_in_fp32_and_bf16"] is True
    assert "/".join(gpu_check.FIRST) in summary["bf16_over_fp32"]
    # the reference steps: ours always, xautodl's when it is installed
    kinds = {(r["kind"], r["impl"]) for r in data["reference"] if r["status"] == "ok"}
    assert {("nb201", "ours"), ("darts", "ours"), ("darts", "ours_pc4")} <= kinds
    if data["meta"]["xautodl"]:
        assert {("nb201", "reference"), ("darts", "reference")} <= kinds
        assert any(k.endswith("time_vs_xautodl") for k in summary["targets"])


def test_a_failing_item_is_recorded_and_the_run_goes_on(tmp_path):
    report = gpu_check.Report(tmp_path / "r.json", {}, budget=60, item_limit=30)

    def boom():
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    report.run("proxies", {"proxy": "a", "precision": "fp32"}, boom, echo=False)
    report.run("proxies", {"proxy": "b", "precision": "fp32"}, lambda: {"seconds": 0.5}, echo=False)
    saved = json.loads((tmp_path / "r.json").read_text())  # written after every item
    assert [r["status"] for r in saved["proxies"]] == ["failed", "ok"]
    assert "illegal memory access" in saved["proxies"][0]["error"] and "boom" in saved["proxies"][0]["traceback"]
    assert saved["finished"] is False


def test_the_budget_and_the_item_limit_stop_work(tmp_path):
    import time

    report = gpu_check.Report(tmp_path / "r.json", {}, budget=60, item_limit=0.3)
    row = report.run("proxies", {"proxy": "slow", "precision": "fp32"}, lambda: time.sleep(5) or {}, echo=False)
    assert row["status"] == "failed" and "time limit" in row["error"] and row["wall_s"] < 3
    spent = gpu_check.Report(tmp_path / "s.json", {}, budget=0, item_limit=30)
    row = spent.run("proxies", {"proxy": "late", "precision": "fp32"}, lambda: pytest.fail("must not run"), echo=False)
    assert row["status"] == "skipped" and "budget" in row["error"]


def test_cross_section_covers_every_name_with_few_triples():
    combos = [(o, s, p) for o in "abc" for s in "xy" for p in "PQRS" if not (o == "c" and p == "S")]
    picked = gpu_check.cross_section(combos)
    assert {t[0] for t in picked} == set("abc") and {t[1] for t in picked} == set("xy")
    assert {t[2] for t in picked} == set("PQRS") and len(picked) == 4
