"""The example plugin is discovered through its entry point and passes the nas-core contract suites."""

import nas_core
from nas_core.testing import FakeStrategy, check_objective, check_proxy, check_space, check_strategy


def test_discovered_through_the_entry_point():
    info = {i.name: i for i in nas_core.get_plugin_manager().plugins_info()}
    assert info["example"].ok and info["example"].dist == "nas-plugin-example"
    assert info["example"].registered == {"space": ["chain"], "objective": ["denoise"], "proxy": ["depth"]}
    space = nas_core.create_space("chain", depth=4, channels=4)
    assert space.parse("conv3x3>skip>conv5x5>skip").ops[2] == "conv5x5"


def test_space_contract():
    space = nas_core.create_space("chain", depth=4, channels=4)
    check_space(space, img_size=16)
    # cost() is computed analytically; it must agree with the real network
    arch = space.parse("conv3x3>skip>conv5x5>conv3x3")
    assert space.cost(arch).params == sum(p.numel() for p in space.build(arch, num_classes=10).parameters())


def test_proxy_contract_and_use_in_a_search():
    check_proxy(nas_core.create_proxy("depth"), space=nas_core.create_space("chain", channels=4))
    res = check_strategy(lambda: FakeStrategy(budget=8), space=nas_core.create_space("chain", channels=4),
                         evaluator_factory=lambda: nas_core.create_proxy("depth"))
    assert "skip" not in str(res.best)  # the deepest chain wins on this proxy


def test_objective_contract_and_use_in_a_search(tmp_path):
    check_objective(lambda: nas_core.create_objective("denoise"))
    res = nas_core.search(space="chain", objective="denoise", strategy="darts", data="digits", limit=32, img_size=16,
                          space_options={"channels": 4}, strategy_options={"epochs": 2, "batch_size": 8},
                          run_dir=tmp_path / "run", progress=False, pictures=False)
    assert res.objective == "denoise" and len(str(res.best).split(">")) == 4
