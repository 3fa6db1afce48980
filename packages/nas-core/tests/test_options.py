"""Option values checked against the types and ranges components declare, before any compute."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Literal, Optional, Sequence

import pytest

import nas_core
from nas_core import ConfigError, Range
from nas_core._options import check_options, option_specs
from nas_core.testing import FakePlugin


@dataclass
class Component:
    epochs: int = 10
    lr: float = 0.1
    ratio: Annotated[float, Range(gt=0, lt=1)] = 0.5
    depth: int = field(default=2, metadata={"range": Range(ge=2)})
    mode: Literal["fast", "slow"] = "fast"
    limit: Optional[int] = None
    betas: tuple[float, float] = (0.5, 0.9)
    names: Sequence[str] = ("a",)
    flag: bool = False
    table: dict[str, float] | None = None
    anything: object = None


def test_specs_read_annotations_declared_ranges_and_conventions():
    specs = option_specs(Component)
    assert specs["ratio"][1] == Range(gt=0, lt=1) and specs["depth"][1] == Range(ge=2)
    assert specs["epochs"][1] == Range(ge=1) and specs["lr"][1] == Range(gt=0)  # conventions for shared names
    assert specs["mode"][1] is None and specs["epochs"][2] == 10
    assert str(Range(gt=0, lt=1)) == "in (0, 1)" and str(Range(ge=1)) == ">= 1" and str(Range(ge=0, le=1)) == "in [0, 1]"


GOOD = [{"epochs": 3}, {"lr": 1}, {"ratio": 0.2}, {"depth": 5}, {"mode": "slow"}, {"limit": None}, {"limit": 4},
        {"betas": [0.1, 0.2]}, {"names": ["x", "y"]}, {"flag": True}, {"table": {"a": 1.0}}, {"anything": "x"},
        {"epochs": None}, {"unknown": "left to the factory's own check"}]
BAD = [
    ({"epochs": "abc"}, "option 'epochs' expects an integer, got 'abc'; the default is 10"),
    ({"epochs": 1.5}, "expects an integer, got 1.5"),
    ({"epochs": True}, "expects an integer, got True (a boolean)"),
    ({"epochs": math.inf}, "expects an integer, got inf"),
    ({"epochs": 0}, "option 'epochs' must be >= 1, got 0"),
    ({"lr": math.nan}, "option 'lr' must be a finite number, got nan"),
    ({"lr": -1}, "option 'lr' must be > 0, got -1"),
    ({"lr": "fast"}, "option 'lr' expects a number"),
    ({"ratio": 1.0}, "option 'ratio' must be in (0, 1), got 1.0"),
    ({"depth": 1}, "option 'depth' must be >= 2"),
    ({"mode": "medium"}, "option 'mode' expects one of 'fast', 'slow'"),
    ({"limit": "all"}, "option 'limit' expects an integer (or none)"),
    ({"betas": 0.5}, "option 'betas' expects a list of 2 numbers, got 0.5"),
    ({"betas": [0.5]}, "expects a list of 2 numbers"),
    ({"betas": [0.5, "x"]}, "expects a list of 2 numbers"),
    ({"names": "x"}, "option 'names' expects a list of strings, got 'x'; write a list: names=[a,b]"),
    ({"names": [1]}, "expects a list of strings"),
    ({"flag": "yes"}, "option 'flag' expects true or false"),
    ({"flag": 1}, "expects true or false"),
    ({"table": {"a": "b"}}, "option 'table' expects a table/mapping"),
]


@pytest.mark.parametrize("options", GOOD)
def test_values_that_fit_pass(options):
    check_options("strategy 'c'", Component, options)


@pytest.mark.parametrize("options, message", BAD)
def test_values_that_do_not_fit_are_named(options, message):
    with pytest.raises(ConfigError) as e:
        check_options("strategy 'c'", Component, options)
    assert str(e.value).startswith("strategy 'c': ") and message in str(e.value)


def test_functions_and_plain_classes_are_checked_too():
    def train(*, epochs: int = 1, lr: float = 0.1) -> None: ...

    class Space:
        def __init__(self, channels: int = 8, name: str = "x"):
            pass

    with pytest.raises(ConfigError, match="'lr' must be > 0"):
        check_options("", train, {"lr": 0})
    with pytest.raises(ConfigError, match="'channels' expects an integer"):
        check_options("space 's'", Space, {"channels": "wide"})


def test_search_checks_every_component_before_any_compute(register_plugin, tmp_path):
    register_plugin(FakePlugin(), "fake")
    started = []

    class Watch:
        @nas_core.hookimpl
        def nas_run_start(self, context):
            started.append(context)

    register_plugin(Watch(), "watch")
    run = dict(space="fake", objective="fake", strategy="fake", data="digits", limit=16, img_size=16, progress=False)
    for options, message in [({"budget": "abc"}, "strategy 'fake': option 'budget' expects an integer"),
                             ({"lr": -1.0}, "strategy 'fake': option 'lr' must be > 0"),
                             ({"channels": 2.5}, "space 'fake': option 'channels' expects an integer"),
                             ({"img_size": 0}, "run: option 'img_size' must be >= 8"),
                             ({"seed": "x"}, "run: option 'seed' expects an integer"),
                             ({"device": "tpu"}, "device: 'tpu' is not a torch device"),
                             ({"trackers": ["wandb"]}, "unknown tracker 'wandb'"),
                             ({"run_dir": ""}, "run_dir: the value is empty")]:
        with pytest.raises(ConfigError) as e:
            nas_core.search(**{**run, **options})
        assert message in str(e.value)
    config = nas_core.resolve_config("fake", "fake", "fake", strategy_options={"budget": True})
    with pytest.raises(ConfigError, match="option 'budget' expects an integer, got True"):
        nas_core.search(config=config)
    assert not started and not list(tmp_path.iterdir())


def test_a_proxy_driven_strategy_gets_no_objective_it_was_not_given(register_plugin):
    from nas_core._search import default_objective

    register_plugin(FakePlugin(), "fake")
    assert default_objective("fake") == "mim"  # the fake strategy ranks with objectives too

    class ProxyOnly:
        needs = {"none": frozenset(), "proxy": frozenset()}

    assert default_objective(ProxyOnly()) is None
