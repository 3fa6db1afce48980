"""Label-free proxies with every registered label-free objective on a tiny NB201 network: the loss
comes from the objective, epe_nas takes the pretext classes where the objective has a pretext task,
and neither the network nor the objective is left modified."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("nas_spaces")
pytest.importorskip("nas_objectives")
pytest.importorskip("nas_proxies")

from nas_core import create_objective, create_space, get_entry, list_objectives  # noqa: E402
from nas_core.testing import assert_module_unchanged, snapshot_module  # noqa: E402

import nas_proxies  # noqa: E402

LABEL_FREE = [n for n in list_objectives() if not get_entry("objective", n).metadata.get("requires_labels")]
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"


@pytest.mark.parametrize("objective_name", LABEL_FREE)
def test_label_free_proxies_with_objective(objective_name):
    space = create_space("nb201", channels=4, num_cells=1)
    torch.manual_seed(0)
    net = space.build(space.parse(ARCH), num_classes=10)
    # distill: an explicitly random teacher (pretrain_steps=0): this test is about the proxies' label-free loss
    objective = create_objective(objective_name, **({"pretrain_steps": 0} if objective_name == "distill" else {}))
    loss_fn = nas_proxies.objective_loss(objective, net, img_size=16)
    x = torch.rand(8, 3, 16, 16)
    before, before_obj = snapshot_module(net), snapshot_module(objective)
    first = nas_proxies.score_all(net, x, loss_fn=loss_fn)
    assert set(first) == set(nas_proxies.PROXY_NAMES)
    assert_module_unchanged(before, net, f"score_all with {objective_name}")
    assert_module_unchanged(before_obj, objective, f"score_all ({objective_name} objective)")
    assert dict(nas_proxies.score_all(net, x, loss_fn=loss_fn)) == dict(first)
    # the loss really is the objective's: the supervised form differs
    supervised = nas_proxies.score_all(net, x, torch.arange(8) % 10, ["grad_norm"])
    assert supervised["grad_norm"] != first["grad_norm"]
    if objective.pretext_targets(x) is not None:  # epe_nas uses the pretext classes, not k-means
        pseudo = nas_proxies.score_all(net, x, None, ["epe_nas"])
        assert pseudo["epe_nas"] != first["epe_nas"]
