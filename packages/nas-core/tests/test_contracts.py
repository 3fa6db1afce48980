"""Contracts: feature_info, architecture values, compatibility checks, and that the contract suites
accept the fakes and reject broken implementations."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import nas_core
from nas_core import (
    ArchitectureError,
    BenchmarkTable,
    FeatureInfo,
    IncompatibleError,
    SearchResult,
    check_compatible,
    hookimpl,
)
from nas_core.testing import (
    FakeArch,
    FakeGradProxy,
    FakeObjective,
    FakePlugin,
    FakeProxy,
    FakeSpace,
    FakeStrategy,
    check_objective,
    check_proxy,
    check_space,
    check_strategy,
)


def test_feature_info_follows_timm_rules():
    fi = FeatureInfo([{"num_chs": 8, "reduction": 2}, {"num_chs": 16, "reduction": 4}, {"num_chs": 32, "reduction": 8}])
    assert fi.channels() == [8, 16, 32] and fi.reduction() == [2, 4, 8]
    assert fi.channels(2) == [16, 32]  # an int means the last n
    assert fi.channels([-1, 0]) == [32, 8]
    assert fi.module_name() == ["stages.0", "stages.1", "stages.2"]
    assert fi.select(1).channels() == [32]
    assert fi == fi.to_list() and hash(fi) == hash(FeatureInfo(fi.to_list()))
    with pytest.raises(ValueError, match="never decrease"):
        FeatureInfo([{"num_chs": 8, "reduction": 4}, {"num_chs": 8, "reduction": 2}])
    with pytest.raises(ValueError, match="num_chs"):
        FeatureInfo([{"reduction": 4}])
    with pytest.raises(ValueError, match="out of range"):
        fi.channels([3])


def test_architecture_value_semantics():
    a = FakeArch(("conv", "skip", "zero"))
    b = FakeArch.parse("conv-skip-zero")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a.to_json() == {"space": "fake", "arch": "conv-skip-zero"}
    with pytest.raises(Exception):
        a.ops = ("zero",) * 3  # type: ignore[misc]
    with pytest.raises(ArchitectureError, match="edge 1 has unknown op 'conc'"):
        FakeArch.parse("conv-conc-zero")


def test_arch_from_json_uses_the_registry(register_plugin):
    register_plugin(FakePlugin(), "fake")
    a = FakeArch(("conv", "conv", "skip"))
    assert nas_core.arch_from_json(json.loads(json.dumps(a.to_json()))) == a


class Differentiable(FakeStrategy):
    needs = {"objective": frozenset({"differentiable"})}


class OnlySinglePath(FakeSpace):
    capabilities = frozenset({"single_path"})


class NotSinglePath(FakeSpace):
    capabilities = frozenset({"differentiable"})


def test_incompatible_combinations_fail_before_compute_naming_alternatives(register_plugin):
    class Plug:
        @hookimpl
        def nas_register_spaces(self, registry):
            registry.add("good", FakeSpace, capabilities=FakeSpace.capabilities)
            registry.add("sp_only", OnlySinglePath, capabilities=OnlySinglePath.capabilities)

        @hookimpl
        def nas_register_strategies(self, registry):
            registry.add("diff", Differentiable, needs=dict(Differentiable.needs))
            registry.add("rand", FakeStrategy, needs=dict(FakeStrategy.needs))

    register_plugin(Plug(), "plug")
    strat = nas_core.create_strategy("diff")
    space = nas_core.create_space("sp_only")
    with pytest.raises(IncompatibleError) as e:
        check_compatible(strat, space, FakeObjective())
    msg = str(e.value)
    assert "strategy 'diff' with an objective needs a space whose supernet is differentiable" in msg
    assert "space 'sp_only' offers single_path" in msg
    assert "Strategies that work on 'sp_only' with an objective: rand" in msg
    assert "Spaces that work with 'diff': good" in msg
    with pytest.raises(IncompatibleError, match="needs an objective to rank architectures, but got a proxy"):
        check_compatible(strat, nas_core.create_space("good"), FakeProxy())
    # the refusal happens inside run() before any compute: a strategy that checks first never builds anything
    with pytest.raises(IncompatibleError):
        strat.run(space, FakeObjective(), None, None)  # context=None would crash if compute started


def test_label_requiring_objective_in_label_free_search(register_plugin):
    class Supervised(FakeObjective):
        requires_labels = True

    class Plug:
        @hookimpl
        def nas_register_objectives(self, registry):
            registry.add("fake", FakeObjective)
            registry.add("sup", Supervised, requires_labels=True)

    register_plugin(Plug(), "plug")
    with pytest.raises(IncompatibleError) as e:
        check_compatible(FakeStrategy(), FakeSpace(), nas_core.create_objective("sup"), has_labels=False)
    assert "objective 'sup' needs labels" in str(e.value) and "label-free objective (fake)" in str(e.value)


def test_objective_guard_rails():
    obj = FakeObjective()
    with pytest.raises(nas_core.NasError, match="not set up: call objective.setup"):
        obj.loss(torch.nn.Identity(), torch.zeros(1, 3, 8, 8))

    class Supervised(FakeObjective):
        requires_labels = True

    s = Supervised()
    s.setup([{"num_chs": 4, "reduction": 2}])
    with pytest.raises(nas_core.NasError, match="needs labels"):
        s.loss(torch.nn.Identity(), torch.zeros(1, 3, 8, 8))


def test_contract_suites_accept_the_fakes(tmp_path):
    check_space(FakeSpace(), img_size=16)
    check_objective(FakeObjective)
    check_proxy(FakeProxy())
    check_proxy(FakeGradProxy())
    res = check_strategy(FakeStrategy, run_dir=tmp_path, incompatible=(NotSinglePath(), FakeObjective()))
    assert isinstance(res, SearchResult) and res.best in list(FakeSpace().enumerate())


class ChecksLate(FakeStrategy):
    """Starts the run (hooks fire, data is read) before it checks the combination."""

    def run(self, space, evaluator, data, context):
        with context.lifecycle():
            len(data)
        return super().run(space, evaluator, data, context)


class NeverRefuses(FakeStrategy):
    """Declares that an objective needs a differentiable space, but run() silently searches another space."""

    needs = {"objective": frozenset({"differentiable"})}

    def run(self, space, evaluator, data, context):
        return super().run(FakeSpace(), evaluator, data, context)


@pytest.mark.parametrize("factory, clause", [
    (ChecksLate, "refused before compute"),
    (NeverRefuses, "run\\(\\) accepted"),
    (FakeStrategy, "check_compatible accepted"),
])
def test_check_strategy_rejects_late_or_missing_refusals(factory, clause):
    bad = (OnlySinglePath(), FakeObjective()) if factory is NeverRefuses else (NotSinglePath(), FakeObjective())
    if factory is FakeStrategy:
        bad = (OnlySinglePath(), FakeProxy())  # FakeStrategy accepts a proxy on any space: not incompatible
    with pytest.raises(AssertionError, match=clause):
        check_strategy(factory, incompatible=bad)


# -- the suites must fail on broken implementations ---------------------------------------------------


class NoRoundTrip(FakeSpace):
    def decode(self, adjacency, ops):
        return FakeArch(("zero",) * 3)


class MutatesInPlace(FakeSpace):
    def mutate(self, arch, rng):
        return arch


class WrongFeatures(FakeSpace):
    def build(self, arch, num_classes=None):
        net = super().build(arch, num_classes)
        net.feature_info = FeatureInfo([{"num_chs": 99, "reduction": 2}, {"num_chs": 8, "reduction": 4}])
        return net


@pytest.mark.parametrize(
    "space, clause",
    [(NoRoundTrip(), "decode"), (MutatesInPlace(), "mutate"), (WrongFeatures(), "feature_info")],
)
def test_check_space_rejects_broken_spaces(space, clause):
    with pytest.raises(AssertionError, match=clause):
        check_space(space, img_size=16)


class BNMutatingProxy(FakeProxy):
    def score(self, net, images, targets=None, *, loss_fn=None):
        net.train()
        net(images)  # updates BN running statistics
        return 1.0


class RandomProxy(FakeProxy):
    def score(self, net, images, targets=None, *, loss_fn=None):
        return float(np.random.rand())


@pytest.mark.parametrize("proxy, clause", [(BNMutatingProxy(), "unchanged"), (RandomProxy(), "deterministic")])
def test_check_proxy_rejects_broken_proxies(proxy, clause):
    with pytest.raises(AssertionError, match=clause):
        check_proxy(proxy)


class NotLearning(FakeObjective):
    def loss(self, backbone, images, targets=None):
        return super().loss(backbone, images) * 0 + 1.0 + 0 * sum(p.sum() for p in backbone.parameters())


class RandomScore(FakeObjective):
    def score(self, backbone, images):
        return float(np.random.rand())


@pytest.mark.parametrize("factory, clause", [(NotLearning, "loss"), (RandomScore, "repeatable")])
def test_check_objective_rejects_broken_objectives(factory, clause):
    with pytest.raises(AssertionError, match=clause):
        check_objective(factory, steps=10)


class Unseeded(FakeStrategy):
    def run(self, space, evaluator, data, context):
        context.seed = int(np.random.randint(1 << 30))
        context._rngs.clear()
        return super().run(space, evaluator, data, context)


def test_check_strategy_rejects_nondeterminism():
    with pytest.raises(AssertionError, match="deterministic"):
        check_strategy(lambda: Unseeded(budget=6), evaluator_factory=FakeProxy)


def test_search_result_json_round_trip(tmp_path):
    space = FakeSpace()
    res = check_strategy(lambda: FakeStrategy(budget=5), evaluator_factory=FakeProxy)
    path = res.save(tmp_path / "result.json")
    back = SearchResult.load(path, space)
    assert back.best == res.best and [c.arch for c in back.candidates] == [c.arch for c in res.candidates]
    assert back.to_json() == res.to_json()


def test_benchmark_table_layouts(tmp_path):
    rows = {"meta": {"dataset": "x"}, "rows": [
        {"arch": "a", "val_accuracy": 90.0, "proxies": {"p": 1.0, "q": 3.0}},
        {"arch": "b", "val_accuracy": 80.0, "proxies": {"p": 2.0}},
        {"arch": "c", "val_accuracy": 70.0, "proxies": {"p": 3.0, "q": 1.0}},
    ]}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(rows))
    t = BenchmarkTable.load(path)
    assert len(t) == 3 and "a" in t and t.accuracy("b") == 80.0 and t.best().arch == "a"
    assert t.proxy_names() == ["p", "q"] and t.proxy_names(complete=True) == ["p"]
    m = t.proxy_matrix(["p", "q"])
    assert m[1, 0] == 2.0 and np.isnan(m[1, 1])
    assert t.percentile("a") == 0.0 and t.percentile("c") == 2 / 3
    assert t.top_fraction(0.01) == {"a"}
    with pytest.raises(nas_core.DataError, match="not in benchmark table"):
        t.accuracy("zzz")
    naslib = {"cifar10": {"(1, 0, 3, 2, 4, 0)": {"val_accuracy": 50.0, "synflow": {"score": 2.0, "time": 0.1}}}}
    p2 = tmp_path / "zc.json"
    p2.write_text(json.dumps(naslib))
    t2 = BenchmarkTable.load(p2)
    row = next(iter(t2))
    # NASLib op indices (skip, none, conv3, conv1, pool) on edges (1,2),(1,3),(1,4),(2,3),(2,4),(3,4)
    assert row.arch == "|none~0|+|skip_connect~0|nor_conv_3x3~1|+|nor_conv_1x1~0|avg_pool_3x3~1|skip_connect~2|"
    assert row.proxies == {"synflow": 2.0}
    with pytest.raises(nas_core.DataError, match="does not exist"):
        BenchmarkTable.load(tmp_path / "missing.json")


def test_shared_table_loads(shared_data):
    t = BenchmarkTable.load(shared_data / "nb201_cifar10.json")
    assert len(t) == 1104
    assert t.best().val_accuracy == 91.36  # the best of these 1104 rows (cifar10-valid)
    assert {"snip", "flops", "params", "grasp"} <= set(t.proxy_names(complete=True))
    assert {"synflow", "nwot"} <= set(t.proxy_names()) - set(t.proxy_names(complete=True))  # absent in some rows
