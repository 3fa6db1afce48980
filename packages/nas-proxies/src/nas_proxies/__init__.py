"""nas-proxies: the thirteen zero-cost proxies of UP-NAS (label-free variants included), shared-pass
scoring of many proxies at once, and the unified proxy with its weight fitting.

    import nas_proxies
    from nas_core import create_proxy

    scores = nas_proxies.score_all(net, images, loss_fn=nas_proxies.objective_loss("rotation", net))
    synflow = create_proxy("synflow").score(net, images)
    up = create_proxy("unified", preset="weighted")
    ranking = up.combine({"synflow": [...], "jacov": [...], ...})

Names are imported lazily, so loading the plugin (``nas plugins``, ``nas --help``) never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas_core import lazy_exports

from .__about__ import __version__

_LAZY = {
    "PROXY_NAMES": "._utils",
    "pseudo_targets": "._utils",
    "score_all": "._engine",
    "ProxyScores": "._engine",
    "ProxySettings": "._engine",
    "LOSS_PROXIES": "._engine",
    "INPUT_PROXIES": "._engine",
    "DATA_FREE_PROXIES": "._engine",
    "count_flops": "._engine",
    "jacov_score": "._engine",
    "epe_nas_score": "._engine",
    "objective_loss": "._objective",
    "ObjectiveLoss": "._objective",
    "UnifiedProxy": "._unified",
    "PRESETS": "._unified",
    "kendall_tau": "._unified",
    "normalize_scores": "._unified",
    "PROXY_CLASSES": "._proxies",
    "ZeroCostProxy": "._proxies",
    "GradNorm": "._proxies",
    "Snip": "._proxies",
    "Grasp": "._proxies",
    "Fisher": "._proxies",
    "Jacov": "._proxies",
    "Synflow": "._proxies",
    "Nwot": "._proxies",
    "Zen": "._proxies",
    "EpeNas": "._proxies",
    "Flops": "._proxies",
    "Params": "._proxies",
    "L2Norm": "._proxies",
    "Plain": "._proxies",
}

__all__ = ["__version__", *sorted(_LAZY)]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


if TYPE_CHECKING:  # pragma: no cover
    from ._engine import (
        DATA_FREE_PROXIES,
        INPUT_PROXIES,
        LOSS_PROXIES,
        ProxyScores,
        ProxySettings,
        count_flops,
        epe_nas_score,
        jacov_score,
        score_all,
    )
    from ._objective import ObjectiveLoss, objective_loss
    from ._proxies import (
        PROXY_CLASSES,
        EpeNas,
        Fisher,
        Flops,
        GradNorm,
        Grasp,
        Jacov,
        L2Norm,
        Nwot,
        Params,
        Plain,
        Snip,
        Synflow,
        Zen,
        ZeroCostProxy,
    )
    from ._unified import PRESETS, UnifiedProxy, kendall_tau, normalize_scores
    from ._utils import PROXY_NAMES, pseudo_targets
