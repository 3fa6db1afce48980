"""nas-proxies' plugin: registers the thirteen zero-cost proxies, ``unified`` and the ``proxies`` command.

Imports only ``nas_core.hookimpl``: factories are lazy ``"module:attr"`` strings, so listing plugins
never imports torch.
"""

from __future__ import annotations

from typing import Any

from nas_core import hookimpl

# name: (class, summary, data_free, needs_loss, paper, aliases)
_PROXIES: dict[str, tuple[str, str, bool, bool, str, tuple[str, ...]]] = {
    "grad_norm": ("GradNorm", "sum over layers of ||dL/dW||", False, True,
                  "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021", ("gradnorm",)),
    "snip": ("Snip", "connection sensitivity sum |W * dL/dW|", False, True,
             "Lee et al., SNIP, ICLR 2019", ()),
    "grasp": ("Grasp", "Hessian-gradient product -sum W * (H g)", False, True,
              "Wang et al., GraSP, ICLR 2020", ()),
    "fisher": ("Fisher", "per-channel Fisher information of the activations", False, True,
               "Turner et al., BlockSwap, ICLR 2020", ()),
    "jacov": ("Jacov", "input-Jacobian correlation spectrum", False, False,
              "Mellor et al., Neural Architecture Search without Training, ICML 2021 (v1)", ("jacob_cov",)),
    "synflow": ("Synflow", "synaptic flow on |W|, all-ones input, double precision (log)", True, False,
                "Tanaka et al., SynFlow, NeurIPS 2020", ()),
    "nwot": ("Nwot", "log-determinant of the binary activation-code kernel", False, False,
             "Mellor et al., Neural Architecture Search without Training, ICML 2021", ("naswot",)),
    "zen": ("Zen", "Gaussian-perturbation expressivity with batch-norm variance correction", True, False,
            "Lin et al., Zen-NAS, ICCV 2021", ("zen_score",)),
    "epe_nas": ("EpeNas", "per-class input-Jacobian correlations (labels, pretext or k-means classes)", False, False,
                "Lopes et al., EPE-NAS, ICANN 2021", ("epenas",)),
    "flops": ("Flops", "MFLOPs: multiply-accumulates of conv/linear layers for one image", True, False,
              "Ning et al., Evaluating Efficient Performance Estimators of Neural Architectures, NeurIPS 2021", ()),
    "params": ("Params", "parameters in millions", True, False,
               "Ning et al., Evaluating Efficient Performance Estimators of Neural Architectures, NeurIPS 2021", ()),
    "l2_norm": ("L2Norm", "sum over layers of ||W||", True, False,
                "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021", ()),
    "plain": ("Plain", "sum W * dL/dW (signed)", False, True,
              "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021", ()),
}


@hookimpl
def nas_register_proxies(registry: Any) -> None:
    for name, (cls, summary, data_free, needs_loss, paper, aliases) in _PROXIES.items():
        registry.add(
            name,
            f"nas_proxies._proxies:{cls}",
            aliases=aliases,
            summary=summary,
            higher_is_better=True,
            needs_targets=False,
            data_free=data_free,
            needs_loss=needs_loss,
            paper=paper,
        )
    registry.add(
        "unified",
        "nas_proxies._unified:UnifiedProxy",
        aliases=("up", "unified_proxy"),
        summary="UP-NAS unified proxy: weighted sum of normalised proxies, presets of table 1, Kendall-tau fitting (TPE)",
        composite=True,  # a combination of the others: `nas proxies` adds it with --unified, not by default
        higher_is_better=True,
        needs_targets=False,
        data_free=False,
        needs_loss=True,
        paper="Huang et al., UP-NAS: Unified Proxy for Neural Architecture Search, CVPR Workshops 2024",
    )


@hookimpl
def nas_register_commands(registry: Any) -> None:
    registry.add(
        "proxies",
        "nas_proxies._cli:COMMAND",
        summary="score sampled architectures with zero-cost proxies; write a CSV table and a correlation plot",
    )
