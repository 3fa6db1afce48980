"""The thirteen zero-cost proxies as :class:`nas_core.Proxy` classes.

Each is a thin, configurable front of :func:`nas_proxies.score_all` for one name, so a single proxy
and a batch of proxies compute exactly the same numbers. Use :func:`score_all` to score many proxies
for one network: it shares the forward/backward passes.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Sequence

import torch
import torch.nn as nn
from nas_core import LossFn, Proxy

from ._engine import ProxySettings, score_all

__all__ = [
    "ZeroCostProxy",
    "GradNorm",
    "Snip",
    "Grasp",
    "Fisher",
    "Jacov",
    "Synflow",
    "Nwot",
    "Zen",
    "EpeNas",
    "Flops",
    "Params",
    "L2Norm",
    "Plain",
    "PROXY_CLASSES",
]


class ZeroCostProxy(Proxy):
    """Base of the thirteen proxies: ``score`` runs :func:`score_all` for :attr:`name` alone."""

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def settings(self) -> ProxySettings:
        return ProxySettings(seed=self.seed)

    def config(self) -> dict[str, Any]:
        """Options that rebuild this proxy with ``create_proxy(name, **config)``."""
        return {"seed": self.seed}

    def score(
        self,
        net: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        loss_fn: LossFn | None = None,
    ) -> float:
        if targets is None and loss_fn is None and self.objective is not None:
            loss_fn = self._objective_loss()
        return float(score_all(net, images, targets, [self.name], loss_fn=loss_fn, settings=self.settings())[self.name])

    @classmethod
    def score_together(
        cls,
        proxies: Sequence[Proxy],
        net: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        loss_fn: LossFn | None = None,
    ) -> list[float]:
        """One :func:`score_all` per distinct setting (and label-free objective): the proxies share its passes.
        The values equal each proxy's own ``score``; an undefined one is NaN."""
        out = [math.nan] * len(proxies)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, p in enumerate(proxies):
            if not isinstance(p, ZeroCostProxy):
                out[i] = Proxy.score_together([p], net, images, targets, loss_fn=loss_fn)[0]
                continue
            own_loss = p.objective is not None and targets is None and loss_fn is None
            groups.setdefault((p.settings(), id(p.objective) if own_loss else None), []).append(i)
        for (settings, own), idx in groups.items():
            first = proxies[idx[0]]
            lf = first._objective_loss() if own is not None else loss_fn  # type: ignore[union-attr]
            names = [proxies[i].name for i in idx]  # type: ignore[union-attr]
            res = score_all(net, images, targets, names, loss_fn=lf, settings=settings, errors="skip")
            for i, n in zip(idx, names):
                out[i] = float(res.get(n, math.nan))
        return out

    def _objective_loss(self) -> LossFn:
        """The label-free loss of ``self.objective`` (set by ``nas_core.search`` when a run names an objective)."""
        from ._objective import objective_loss

        cached = getattr(self, "_loss_of", None)
        if cached is None or cached.objective is not self.objective:
            cached = objective_loss(self.objective)
            self._loss_of = cached
        return cached

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({cfg})"


class _LossProxy(ZeroCostProxy):
    needs_loss = True


class GradNorm(_LossProxy):
    """Sum over conv/linear layers of the L2 norm of dL/dW (Abdelfattah et al., ICLR 2021)."""

    name = "grad_norm"
    paper = "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021"
    summary = "sum over layers of ||dL/dW|| (label-free with an objective's loss)"


class Snip(_LossProxy):
    """Sum of |W * dL/dW| over conv/linear weights: connection sensitivity (Lee et al., SNIP, ICLR 2019)."""

    name = "snip"
    paper = "Lee et al., SNIP: Single-shot Network Pruning based on Connection Sensitivity, ICLR 2019"
    summary = "sum |W * dL/dW| (connection sensitivity)"


class Grasp(_LossProxy):
    """-sum W * (H dL/dW): gradient-flow preservation via a Hessian-gradient product (Wang et al., GraSP, ICLR 2020)."""

    name = "grasp"
    paper = "Wang et al., Picking Winning Tickets Before Training by Preserving Gradient Flow (GraSP), ICLR 2020"
    summary = "-sum W * (H g): Hessian-gradient product"


class Fisher(_LossProxy):
    """Sum of per-channel Fisher terms 0.5 mean_n (sum_hw a dL/da)^2 at conv/linear outputs (Turner et al., BlockSwap, ICLR 2020)."""

    name = "fisher"
    paper = "Turner et al., BlockSwap: Fisher-guided Block Substitution for Network Compression, ICLR 2020"
    summary = "per-channel Fisher information of the activations"

    def __init__(self, seed: int = 0, fan_in: bool = True):
        super().__init__(seed)
        self.fan_in = bool(fan_in)

    def settings(self) -> ProxySettings:
        return ProxySettings(seed=self.seed, fisher_fan_in=self.fan_in)

    def config(self) -> dict[str, Any]:
        return {"seed": self.seed, "fan_in": self.fan_in}


class Plain(_LossProxy):
    """Sum of W * dL/dW (signed; Abdelfattah et al., ICLR 2021)."""

    name = "plain"
    paper = "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021"
    summary = "sum W * dL/dW (signed)"


class Jacov(ZeroCostProxy):
    """-sum log(l + k) + 1/(l + k) over eigenvalues of the input-Jacobian correlation matrix (Mellor et al., NASWOT v1, ICML 2021)."""

    name = "jacov"
    paper = "Mellor et al., Neural Architecture Search without Training, ICML 2021 (v1, Jacobian covariance)"
    summary = "input-Jacobian correlation spectrum across the batch"


class EpeNas(ZeroCostProxy):
    """Sum over classes of |sum log(|corr| + k)| of per-class input-Jacobian correlations (Lopes et al., EPE-NAS, ICANN 2021)."""

    name = "epe_nas"
    paper = "Lopes et al., EPE-NAS: Efficient Performance Estimation Without Training for NAS, ICANN 2021"
    summary = "intra-class input-Jacobian correlations (classes: labels, pretext task or k-means)"

    def __init__(self, seed: int = 0, pseudo_classes: int = 10):
        super().__init__(seed)
        self.pseudo_classes = int(pseudo_classes)
        self.settings()  # validate

    def settings(self) -> ProxySettings:
        return ProxySettings(seed=self.seed, pseudo_classes=self.pseudo_classes)

    def config(self) -> dict[str, Any]:
        return {"seed": self.seed, "pseudo_classes": self.pseudo_classes}


class Nwot(ZeroCostProxy):
    """log|K| of the kernel of binary ReLU activation codes K = c c^T + (1-c)(1-c)^T (Mellor et al., NASWOT, ICML 2021)."""

    name = "nwot"
    paper = "Mellor et al., Neural Architecture Search without Training, ICML 2021"
    summary = "log-determinant of the binary activation-code kernel"


class Synflow(ZeroCostProxy):
    """Sum |W * dR/dW| with R = 1^T f(1) on |W| in double precision, batch-norm bypassed (Tanaka et al., SynFlow, NeurIPS 2020); log by default."""

    name = "synflow"
    paper = "Tanaka et al., Pruning Neural Networks without Any Data by Iteratively Conserving Synaptic Flow, NeurIPS 2020"
    summary = "synaptic flow: all-ones input, |weights|, double precision (log)"
    data_free = True

    def __init__(self, bn: str = "identity", log: bool = True):
        super().__init__(0)
        self.bn = bn
        self.log = bool(log)
        self.settings()  # validate

    def settings(self) -> ProxySettings:
        return ProxySettings(synflow_bn=self.bn, synflow_log=self.log)

    def config(self) -> dict[str, Any]:
        return {"bn": self.bn, "log": self.log}


class Zen(ZeroCostProxy):
    """log E||f(x) - f(x + a eps)|| + sum log sigma_BN on Gaussian weights and inputs (Lin et al., Zen-NAS, ICCV 2021)."""

    name = "zen"
    paper = "Lin et al., Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition, ICCV 2021"
    summary = "Gaussian-perturbation expressivity with the batch-norm variance correction"
    data_free = True

    def __init__(self, seed: int = 0, mixup_gamma: float = 1e-2, repeat: int = 1):
        super().__init__(seed)
        self.mixup_gamma = float(mixup_gamma)
        self.repeat = int(repeat)
        self.settings()  # validate

    def settings(self) -> ProxySettings:
        return ProxySettings(seed=self.seed, zen_mixup=self.mixup_gamma, zen_repeat=self.repeat)

    def config(self) -> dict[str, Any]:
        return {"seed": self.seed, "mixup_gamma": self.mixup_gamma, "repeat": self.repeat}


class _Structural(ZeroCostProxy):
    data_free = True

    def __init__(self) -> None:
        super().__init__(0)

    def config(self) -> dict[str, Any]:
        return {}


class Flops(_Structural):
    """Multiply-accumulates (millions) of convolutions and linear layers for one input image (Ning et al., NeurIPS 2021)."""

    name = "flops"
    paper = "Ning et al., Evaluating Efficient Performance Estimators of Neural Architectures, NeurIPS 2021"
    summary = "MFLOPs (multiply-accumulates of conv/linear layers, one image)"


class Params(_Structural):
    """Number of parameters, in millions (Ning et al., NeurIPS 2021)."""

    name = "params"
    paper = "Ning et al., Evaluating Efficient Performance Estimators of Neural Architectures, NeurIPS 2021"
    summary = "parameters (millions)"


class L2Norm(_Structural):
    """Sum over conv/linear layers of the L2 norm of the weights (Abdelfattah et al., ICLR 2021)."""

    name = "l2_norm"
    paper = "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021"
    summary = "sum over layers of ||W||"


PROXY_CLASSES: dict[str, type[ZeroCostProxy]] = {
    c.name: c for c in (GradNorm, Snip, Grasp, Fisher, Jacov, Synflow, Nwot, Zen, EpeNas, Flops, Params, L2Norm, Plain)
}
