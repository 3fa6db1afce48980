"""The nas-core strategy contract for every name this package registers (timm-style, from the registry),
with each kind of evaluator the strategy accepts; registration metadata; a torch-free plugin import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nas_core import IncompatibleError, check_compatible, create_strategy, get_entry, list_strategies
from nas_core.testing import FakeObjective, FakeProxy, FakeSpace, check_strategy
from strategies_toys import fake_table

NAMES = ["darts", "darts_2nd", "evolution", "gradient_ascent", "random"]

#: tiny options per registered name
TINY = {
    "darts": dict(epochs=2, batch_size=8, steps_per_epoch=3),
    "darts_2nd": dict(epochs=2, batch_size=8, steps_per_epoch=3),
    "evolution": dict(population=5, generations=3, parents=3, train_epochs=1, batch_size=8, steps_per_epoch=2),
    "random": dict(budget=8, chunk=4, train_epochs=1, batch_size=8, steps_per_epoch=2),
    "gradient_ascent": dict(vgae_epochs=15, mpe_epochs=10, mpe_batch_size=4, num_samples=16, pretrain_samples=0,
                            num_starts=3, max_steps=150, rescore_top=3, cache_dir=""),
}

#: the evaluators each name accepts, as (id, factory, extra options)
EVALUATORS = {
    "darts": [("objective", FakeObjective, {})],
    "darts_2nd": [("objective", FakeObjective, {})],
    "evolution": [("objective", FakeObjective, {}), ("proxy", FakeProxy, {}), ("table", fake_table, {})],
    "random": [("objective", FakeObjective, {}), ("proxy", FakeProxy, {}), ("table", fake_table, {})],
    "gradient_ascent": [
        ("none", lambda: None, {"proxies": ["fake", "fake_grad"], "loss_objective": "fake"}),
        ("proxy", FakeProxy, {}),
        ("table", fake_table, {}),
    ],
}

CASES = [(n, eid, fac, opts) for n in NAMES for eid, fac, opts in EVALUATORS[n]]


def test_registered_names(registry):
    assert sorted(set(list_strategies()) - {"fake"}) == NAMES  # "fake" comes from the nas-core fakes
    for n in NAMES:
        e = get_entry("strategy", n)
        assert e.summary and e.metadata.get("paper") and e.metadata.get("needs")
    assert get_entry("strategy", "upnas").name == "gradient_ascent"
    assert get_entry("strategy", "spos").name == "evolution"
    assert create_strategy("darts_2nd").unrolled is True


class NoSupernet(FakeSpace):
    capabilities = frozenset({"enumerable"})


#: a space and an evaluator each name cannot combine (its run() must refuse them before any compute)
INCOMPATIBLE = {
    "darts": lambda: (NoSupernet(), FakeObjective()),
    "darts_2nd": lambda: (NoSupernet(), FakeObjective()),
    "evolution": lambda: (NoSupernet(), FakeObjective()),
    "random": lambda: (NoSupernet(), FakeObjective()),
    "gradient_ascent": lambda: (FakeSpace(), FakeObjective()),
}


@pytest.mark.parametrize("name,eid,factory,opts", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_strategy_contract(tmp_path, registry, name, eid, factory, opts):
    res = check_strategy(lambda: create_strategy(name, **{**TINY[name], **opts}), space=FakeSpace(), evaluator_factory=factory,
                         run_dir=tmp_path, incompatible=INCOMPATIBLE[name]())
    assert res.strategy == name
    assert res.candidates and res.best == res.candidates[0].arch
    if eid == "table":  # table-driven searches stay inside the table
        assert all(str(c.arch) in fake_table() for c in res.candidates)
        assert all("val_accuracy" in c.scores for c in res.candidates)


@pytest.mark.parametrize("name", NAMES)
def test_registry_needs_match_the_class(registry, name):
    strategy = create_strategy(name)
    assert dict(get_entry("strategy", name).metadata["needs"]) == dict(strategy.needs)


def test_incompatible_combinations_fail_before_compute(registry):
    for name, need in (("darts", "differentiable"), ("evolution", "single_path"), ("random", "single_path")):
        with pytest.raises(IncompatibleError) as exc:
            check_compatible(create_strategy(name), NoSupernet(), FakeObjective())
        assert f"needs a space whose supernet is {need}, but space 'NoSupernet' offers enumerable" in str(exc.value)
    with pytest.raises(IncompatibleError, match="objective"):
        check_compatible(create_strategy("gradient_ascent"), FakeSpace(), FakeObjective())
    with pytest.raises(IncompatibleError, match="nothing"):
        check_compatible(create_strategy("evolution"), FakeSpace(), None)
    # the one-shot strategies need no supernet at all with a proxy or a table
    check_compatible(create_strategy("evolution"), NoSupernet(), FakeProxy())


def test_plugin_import_does_not_import_torch():
    code = "import sys, nas_strategies.plugin, nas_strategies; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
