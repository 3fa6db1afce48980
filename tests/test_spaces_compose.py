"""nas-spaces with nas-core's benchmark tables and with nas-strategies' searches (tiny settings)."""

from __future__ import annotations

import pytest
import torch

from nas_core import BenchmarkTable, create_space
from nas_core.testing import FakeObjective, fake_images

nas_spaces = pytest.importorskip("nas_spaces")


def test_nb201_table_rows_parse_and_look_up(shared_data):
    space = create_space("nb201")
    table = BenchmarkTable.load(shared_data / "nb201_cifar10.json")
    n = 0
    for arch_str in table.archs()[:200]:
        arch = space.parse(arch_str)
        assert str(arch) == arch_str
        assert table.accuracy(arch) == table.accuracy(arch_str)
        n += 1
    assert n == 200


def _run(strategy, space, nas_context):
    from nas_core import TensorImages

    data = TensorImages(fake_images(32, 32, 0))
    return strategy.run(space, FakeObjective(), data, nas_context)


def test_pc_darts_search_on_rdarts_s3_gives_a_genotype_of_the_space(nas_context):
    nas_strategies = pytest.importorskip("nas_strategies")  # noqa: F841
    from nas_core import create_strategy

    torch.manual_seed(0)
    space = create_space("darts_s3", channels=4, layers=3)
    strategy = create_strategy(
        "darts", epochs=1, batch_size=8, steps_per_epoch=2,
        supernet={"partial_channels": 2, "channels": 8, "layers": 3},
    )
    result = _run(strategy, space, nas_context)
    best = space.parse(str(result.best))  # belongs to S3: no 'none', 2 distinct inputs per node
    assert all(op in ("skip_connect", "sep_conv_3x3") for op, _ in best.normal + best.reduce)


def test_evolution_on_the_vit_supernet(nas_context):
    pytest.importorskip("nas_strategies")
    from nas_core import create_strategy

    torch.manual_seed(0)
    space = create_space(
        "vit", img_size=32, patch_size=8, embed_dims=[16, 24], depths=[2, 3], num_heads=[1, 2],
        mlp_ratios=[2.0, 3.0], head_dim=8, feature_stages=2, num_classes=10,
    )
    strategy = create_strategy(
        "evolution", population=4, generations=2, parents=2, train_epochs=1, batch_size=8, steps_per_epoch=2,
        eval_batches=1, calib_batches=1,
    )
    result = _run(strategy, space, nas_context)
    best = space.parse(str(result.best))
    assert best.embed_dim in (16, 24) and len(result.candidates) >= 4
