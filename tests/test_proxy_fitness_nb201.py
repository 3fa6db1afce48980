"""The training-free fitness on real NAS-Bench-201 networks: the unified proxy's calibration candidates are
scored from the components calibration computed, and that equals scoring them afresh."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("nas_spaces")
pytest.importorskip("nas_proxies")

from nas_core import NasPluginManager, RunContext, create_proxy, create_space  # noqa: E402
from nas_strategies import ProxyFitness  # noqa: E402

import nas_proxies._unified as unified_module  # noqa: E402


def _fitness(space):
    ctx = RunContext(device="cpu", seed=0, progress=False, distributed=False, plugin_manager=NasPluginManager(autoload=False))
    g = torch.Generator().manual_seed(0)
    images = torch.rand(8, 3, 16, 16, generator=g)
    targets = torch.arange(8) % 4
    proxy = create_proxy("unified", preset="weighted")
    return ProxyFitness(proxy, space, images, targets, context=ctx, num_classes=10, seed=3)


def test_calibration_candidates_are_scored_once_and_as_if_scored_afresh(monkeypatch):
    space = create_space("nb201", channels=4, num_cells=1)
    rng = np.random.default_rng(0)
    archs = []
    while len(archs) < 4:
        a = space.sample(rng)
        if space.defect(a) is None and str(a) not in {str(b) for b in archs}:
            archs.append(a)
    calls = []
    real = unified_module.score_all
    monkeypatch.setattr(unified_module, "score_all", lambda *a, **k: calls.append(1) or real(*a, **k))

    reused = _fitness(space)
    assert reused.calibrate_on(archs) == 4
    got = [reused(a) for a in archs]
    assert len(calls) == 4  # calibration's passes only: scoring them did not run the proxies again

    afresh = _fitness(space)
    afresh.calibrate_on(archs)
    afresh._known.clear()  # what scoring computes without calibration's components
    want = [afresh(a) for a in archs]
    assert len(calls) == 12
    assert got == want  # exactly: the same network, seeds and inputs
    assert len({g["fitness"] for g in got}) == 4
    # a candidate outside the calibration set is computed
    other = next(a for a in (space.sample(rng) for _ in range(100)) if space.defect(a) is None and str(a) not in map(str, archs))
    assert np.isfinite(reused(other)["fitness"]) and len(calls) == 13
