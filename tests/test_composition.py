"""Every registered objective x strategy x space, generated from the registry (a new plugin joins automatically):
compatible triples run a seconds-long label-free search with each component's ``smoke`` options and must end with
a valid, round-tripping architecture and a falling loss; incompatible triples must be refused before compute with
the message the user sees."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import nas_core
from nas_core import IncompatibleError, SearchResult, check_compatible, hookimpl

PM = nas_core.get_plugin_manager()


def _smoke(kind: str, name: str) -> dict:
    return dict(nas_core.get_entry(kind, name).metadata.get("smoke") or {})


def _families() -> list[str]:
    """One space per implementation (presets of one class share their code paths; each preset gets its own
    search in test_every_registered_space_runs_a_search)."""
    seen, out = set(), []
    for e in PM.registry("space"):
        key = e.factory if isinstance(e.factory, str) else id(e.factory)
        if key not in seen:
            seen.add(key)
            out.append(e.name)
    return out


SPACES = _families()
OBJECTIVES = nas_core.list_objectives()
STRATEGIES = nas_core.list_strategies()
MATRIX = [(o, s, sp) for o in OBJECTIVES for s in STRATEGIES for sp in SPACES]


def _build(objective: str, strategy: str, space: str):
    return (
        nas_core.create_objective(objective, **_smoke("objective", objective)),
        nas_core.create_strategy(strategy, **_smoke("strategy", strategy)),
        nas_core.create_space(space, **_smoke("space", space)),
    )


class LossRecorder:
    def __init__(self) -> None:
        self.losses: list[float] = []

    @hookimpl
    def nas_step_end(self, metrics):
        if "loss" in metrics:
            self.losses.append(float(metrics["loss"]))


def _data_for(objective: str) -> str:
    return "photos" if objective == "colorization" else "digits"


@pytest.mark.parametrize("objective, strategy, space", MATRIX, ids=["-".join(t) for t in MATRIX])
def test_composition(objective, strategy, space, tmp_path):
    obj, strat, sp = _build(objective, strategy, space)
    rd = tmp_path / "run"
    try:
        check_compatible(strat, sp, obj, has_labels=False)
    except IncompatibleError as refusal:
        message = str(refusal)
        with pytest.raises(IncompatibleError) as seen:
            nas_core.search(space=sp, objective=obj, strategy=strat, data="digits", limit=16, run_dir=rd, progress=False)
        assert str(seen.value) == message
        assert not rd.exists(), "a refused combination must not create its run directory"
        assert f"'{strategy}'" in message or f"'{objective}'" in message
        assert any(w in message for w in ("Strategies that", "Spaces that", "label-free objective", "No installed"))
        return
    rec = LossRecorder()
    PM.register_plugin(rec, f"recorder-{objective}-{strategy}-{space}")
    try:
        result = nas_core.search(space=sp, objective=obj, strategy=strat, data=_data_for(objective), limit=32,
                                 img_size=getattr(sp, "img_size", None) or 32, run_dir=rd, progress=False, seed=0)
    finally:
        PM.unregister_plugin(f"recorder-{objective}-{strategy}-{space}")
    assert isinstance(result, SearchResult)
    best = result.best
    assert sp.parse(str(best)) == best, "the result's architecture must round-trip through its string"
    assert json.loads(json.dumps(best.to_json()))["arch"] == str(best)
    saved = json.loads((rd / "result.json").read_text())
    assert saved["best"] == str(best) and saved["objective"] == objective and saved["strategy"] == strategy
    sp.build(best, num_classes=10)  # a valid architecture of the space builds a standalone network
    losses = rec.losses
    assert len(losses) >= 4, f"only {len(losses)} training steps were reported"
    assert all(math.isfinite(v) for v in losses)
    k = max(2, len(losses) // 3)
    first, last = float(np.mean(losses[:k])), float(np.mean(losses[-k:]))
    assert last < first, f"loss did not fall: first {k} steps {first:.4f}, last {k} {last:.4f}"


def test_every_registered_space_runs_a_search(tmp_path):
    """Presets (darts_s1..s4, autoformer_*) each run a one-shot or differentiable search with MIM."""
    for name in nas_core.list_spaces():
        sp = nas_core.create_space(name, **_smoke("space", name))
        for strategy in ("darts", "random"):
            strat = nas_core.create_strategy(strategy, **_smoke("strategy", strategy))
            obj = nas_core.create_objective("mim")
            try:
                check_compatible(strat, sp, obj, has_labels=False)
            except IncompatibleError:
                continue
            res = nas_core.search(space=sp, objective=obj, strategy=strat, data="digits", limit=16,
                                  img_size=getattr(sp, "img_size", None) or 32, progress=False)
            assert sp.parse(str(res.best)) == res.best, name
            break
        else:
            pytest.fail(f"no strategy could search space '{name}' with mim")


def test_the_cli_shows_the_refusal(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "nas_core.cli", "search", "--space", "vit", "--objective", "mim", "--strategy", "darts",
         "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 2
    assert "strategy 'darts' with an objective needs a space whose supernet is differentiable" in r.stderr
    assert "Strategies that work on 'vit'" in r.stderr and "evolution" in r.stderr
    assert not (tmp_path / "run").exists()


def test_supervised_baseline_runs_when_labels_are_asked_for(tmp_path):
    sp = nas_core.create_space("nb201", **_smoke("space", "nb201"))
    strat = nas_core.create_strategy("darts", **_smoke("strategy", "darts"))
    res = nas_core.search(space=sp, objective="supervised", strategy=strat, data="digits", limit=32, labels=True,
                          progress=False)
    assert sp.parse(str(res.best)) == res.best and res.objective == "supervised"
