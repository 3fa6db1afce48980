"""Label-free use of the loss-based proxies through an objective."""

import pytest


def test_a_proxy_takes_its_loss_from_its_objective_attribute():
    """nas_core.search sets proxy.objective when a run names both a proxy and an objective."""
    import torch

    import nas_core
    from nas_core.testing import FakeObjective, FakeSpace
    from nas_proxies import objective_loss

    space = FakeSpace()
    torch.manual_seed(0)
    net = space.build(space.parse("conv-skip-conv"), num_classes=10)
    x = torch.rand(8, 3, 16, 16)
    proxy = nas_core.create_proxy("snip")
    with pytest.raises(Exception, match="loss"):
        proxy.score(net, x)
    expected = proxy.score(net, x, loss_fn=objective_loss(FakeObjective()))
    proxy.objective = FakeObjective()
    assert proxy.score(net, x) == pytest.approx(expected, rel=1e-6)
