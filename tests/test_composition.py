"""Every registered objective x strategy x space, generated from the registry (a new plugin joins automatically):
compatible triples run a seconds-long label-free search with each component's ``smoke`` options and must end with
a valid, round-tripping architecture and a falling loss; incompatible triples must be refused before compute with
the message the user sees."""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import nas_core
from nas_core import IncompatibleError, SearchResult, check_compatible, hookimpl

PM = nas_core.get_plugin_manager()


def _gpu_check():
    """bench/gpu_check.py, which takes the matrix from the registry for the device check: one definition for both."""
    path = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check_for_tests", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


GPU_CHECK = _gpu_check()
_smoke = GPU_CHECK.smoke
SPACES = GPU_CHECK.space_families()  # one space per implementation (presets: test_every_registered_space_runs_a_search)
OBJECTIVES = nas_core.list_objectives()
STRATEGIES = nas_core.list_strategies()
MATRIX = GPU_CHECK.matrix()


#: image size of the searches: 16x16 (4x fewer pixels than 32x32: the CNN spaces' steps are that much cheaper)
IMG = 16


def _space(name: str):
    """The space with its smoke options, at IMG pixels when it takes an image size."""
    opts = _smoke("space", name)
    if "img_size" in inspect.signature(nas_core.get_entry("space", name).load()).parameters:
        opts["img_size"] = IMG
    return nas_core.create_space(name, **opts)


def _build(objective: str, strategy: str, space: str):
    return (
        nas_core.create_objective(objective, **_smoke("objective", objective)),
        nas_core.create_strategy(strategy, **_smoke("strategy", strategy)),
        _space(space),
    )


class LossRecorder:
    def __init__(self) -> None:
        self.losses: list[float] = []

    @hookimpl
    def nas_step_end(self, metrics):
        if "loss" in metrics:
            self.losses.append(float(metrics["loss"]))


_data_for = GPU_CHECK.data_for


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
                                 img_size=IMG, run_dir=rd, progress=False, seed=0)
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
        sp = _space(name)
        for strategy in ("darts", "random"):
            strat = nas_core.create_strategy(strategy, **_smoke("strategy", strategy))
            obj = nas_core.create_objective("mim")
            try:
                check_compatible(strat, sp, obj, has_labels=False)
            except IncompatibleError:
                continue
            try:
                res = nas_core.search(space=sp, objective=obj, strategy=strat, data="digits", limit=16,
                                      img_size=IMG, progress=False)
            except Exception as exc:  # name the pair: one NaN in a full CI run was not reproducible alone
                raise AssertionError(f"space {name!r}, strategy {strategy!r}, {torch.get_num_threads()} thread(s): "
                                     f"{type(exc).__name__}: {exc}") from exc
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


# -- precision and dtype: tensors made without the module's device or dtype show up on the CPU ----------------------


def _bf16_triples() -> list[tuple[str, str, str]]:
    """Every label-free objective through the differentiable path (first-order DARTS on nb201 and chain in turn),
    MIM + DARTS on every other differentiable space, and MIM + evolution (single path) on the spaces DARTS cannot
    search."""
    ok = [t for t, why in GPU_CHECK.refusals(MATRIX).items() if why is None]
    diff = [sp for sp in SPACES if ("mim", "darts", sp) in ok]
    cheap = [sp for sp in ("nb201", "chain") if sp in diff] or diff
    objectives = sorted({o for o, _, _ in ok})
    out = [(o, "darts", cheap[i % len(cheap)]) for i, o in enumerate(objectives)]
    out += [("mim", "darts", sp) for sp in diff if sp not in cheap]
    out += [("mim", "evolution", sp) for sp in SPACES if sp not in diff]
    return [t for t in out if t in ok]


def test_bf16_autocast_cross_section(tmp_path):
    """The whole search (data, strategy, objective heads, result, cost) inside CPU bf16 autocast: every objective
    and every space; the run ends with finite losses and a valid architecture."""
    triples = _bf16_triples()
    assert {o for o, _, _ in triples} >= {"mim", "rotation", "colorization", "jigsaw", "distill"}
    assert {sp for _, _, sp in triples} == set(SPACES)
    failures = []
    for objective, strategy, space in triples:
        obj, strat = _build(objective, strategy, space)[:2]
        sp = nas_core.create_space(space, **_smoke("space", space))  # 32x32: bf16 trouble shows at full size
        rec = LossRecorder()
        name = f"bf16-recorder-{objective}-{strategy}-{space}"
        PM.register_plugin(rec, name)
        try:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                res = nas_core.search(space=sp, objective=obj, strategy=strat, data=_data_for(objective), limit=32,
                                      img_size=getattr(sp, "img_size", None) or IMG, precision="bf16", progress=False,
                                      seed=0, run_dir=tmp_path / name)
            assert sp.parse(str(res.best)) == res.best
            assert rec.losses and all(math.isfinite(v) for v in rec.losses), rec.losses
        except Exception as e:  # noqa: BLE001 - report every failing triple at once
            failures.append(f"{objective} + {strategy} on {space}: {type(e).__name__}: {str(e)[:300]}")
        finally:
            PM.unregister_plugin(name)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("mode", ["default", "cast"])
@pytest.mark.parametrize("space", SPACES)
def test_float64_networks_objectives_and_proxies(space, mode):
    """Networks are dtype-independent (synflow runs them in float64): a space's supernet and built networks, every
    label-free objective's heads and loss, and the proxies, in float64 - built under a float64 default dtype
    ("default") or cast with .double() ("cast", which catches tensors made in the default float32)."""
    import nas_proxies

    old = torch.get_default_dtype()
    if mode == "default":
        torch.set_default_dtype(torch.float64)
    try:
        sp = _space(space)
        img = IMG
        g = torch.Generator().manual_seed(0)
        x = torch.rand(4, 3, img, img, generator=g, dtype=torch.float64)
        sn = sp.supernet().double()
        net = sp.build(sp.sample(np.random.default_rng(0)), num_classes=10).double()
        feats = sn(x)
        assert all(f.dtype == torch.float64 for f in feats)
        assert net(x).dtype == torch.float64
        for name in OBJECTIVES:
            # distill: an explicitly random teacher (pretrain_steps=0): dtypes, not teaching, are checked here
            obj = nas_core.create_objective(name, **{**_smoke("objective", name),
                                                     **({"pretrain_steps": 0} if name == "distill" else {})})
            if obj.requires_labels:
                continue
            obj.setup(sn.feature_info, in_chans=3, img_size=img)
            obj.double()
            sn.zero_grad(set_to_none=True)
            loss = obj.loss(sn, x)
            loss.backward()
            assert math.isfinite(float(loss.detach())) and math.isfinite(obj.score(sn, x)), name
            grads = [p.grad for p in list(sn.parameters()) + list(obj.parameters()) if p.grad is not None]
            assert grads and all(gr.dtype == torch.float64 and torch.isfinite(gr).all() for gr in grads), name
        scores = nas_proxies.score_all(net, x, torch.arange(4) % 10)
        assert all(math.isfinite(v) for v in scores.values()), scores
    finally:
        torch.set_default_dtype(old)
