"""Scoring many proxies for one network with shared passes.

The thirteen proxies need, at most:

* one **loss pass** (forward, gradient of the loss w.r.t. the conv/linear weights) shared by
  ``grad_norm``, ``snip``, ``plain`` and ``fisher`` (whose per-channel activation x gradient terms are
  collected by hooks during that same backward), and by ``grasp`` (the same gradient taken with
  ``create_graph=True`` plus one Hessian-vector product);
* one **input pass** (forward with hooks on the activations, gradient of the summed output w.r.t. the
  input) shared by ``jacov``, ``epe_nas`` and ``nwot``. With targets (the supervised form) it is the
  very same forward as the loss pass, since both see the same images with batch-norm in train mode;
* ``synflow`` (one all-ones image in double precision on absolute-valued weights), ``zen`` (two
  forwards of Gaussian inputs on Gaussian-initialised weights), ``flops`` (one image, counted by
  hooks), ``params`` and ``l2_norm`` (no pass).

Everything runs on the device of ``images``; the network is left exactly as it was found
(``nas_core.preserved_state``: weights, batch-norm statistics, ``requires_grad``, ``.grad``, modes), and
torch's global RNG is not advanced (randomness is forked and seeded from ``seed``).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from nas_core import ConfigError, NasError, NonFiniteError, forward_features, preserved_state

from ._utils import (
    PROXY_NAMES,
    arch_label,
    check_finite,
    net_logits,
    net_output,
    prunable_layers,
    pseudo_targets,
    seeded,
)

__all__ = ["ProxySettings", "ProxyScores", "score_all", "LOSS_PROXIES", "INPUT_PROXIES", "DATA_FREE_PROXIES"]

LossFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]

#: proxies computed from the gradient of a loss
LOSS_PROXIES = frozenset({"grad_norm", "snip", "grasp", "fisher", "plain"})
#: proxies computed from the input Jacobian or the activation codes of the images
INPUT_PROXIES = frozenset({"jacov", "epe_nas", "nwot"})
#: proxies that use only the input shape, never the image values
DATA_FREE_PROXIES = frozenset({"synflow", "zen", "flops", "params", "l2_norm"})

_EIG_EPS = 1e-5  # the k of jacov/epe_nas (zero-cost-nas, NASLib)
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.GELU)


@dataclass(frozen=True)
class ProxySettings:
    """Options of the proxies (each proxy class exposes its own as constructor arguments).

    ``seed``: seeds every random choice (zen's Gaussian weights and inputs, pseudo-classes, the
    objective's masks inside ``loss_fn``, dropout) so scores are repeatable.
    ``synflow_bn``: ``"identity"`` (batch-norm bypassed, as SynFlow's paper evaluates the network in
    eval mode at initialisation and zero-cost-nas/NASLib's ``synflow`` removes it), ``"eval"`` (running
    statistics, made absolute like every tensor) or ``"train"`` (batch statistics of the single image).
    ``synflow_log``: return ``log`` of the sum (NAS-Bench-Suite-Zero's published scale).
    ``zen_mixup``: Zen-NAS' perturbation scale alpha; ``zen_repeat``: Gaussian draws averaged.
    ``pseudo_classes``: k of the k-means pseudo-classes that epe_nas uses when there are no labels and
    the objective has no pretext classes.
    ``fisher_fan_in``: count each channel's Fisher term once per weight of that channel (the
    zero-cost-nas/NASLib convention) instead of once per channel (BlockSwap's sum).
    """

    seed: int = 0
    synflow_bn: str = "identity"
    synflow_log: bool = True
    zen_mixup: float = 1e-2
    zen_repeat: int = 1
    pseudo_classes: int = 10
    fisher_fan_in: bool = True

    def __post_init__(self) -> None:
        if self.synflow_bn not in ("identity", "eval", "train"):
            raise ConfigError(f"proxy 'synflow': bn must be 'identity', 'eval' or 'train', got {self.synflow_bn!r}")
        if self.zen_repeat < 1:
            raise ConfigError(f"proxy 'zen': repeat must be >= 1, got {self.zen_repeat}")
        if not self.zen_mixup > 0:
            raise ConfigError(f"proxy 'zen': mixup_gamma must be > 0, got {self.zen_mixup}")
        if self.pseudo_classes < 2:
            raise ConfigError(f"proxy 'epe_nas': pseudo_classes must be >= 2, got {self.pseudo_classes}")


class ProxyScores(dict):
    """``{proxy: score}`` plus ``errors`` (``{proxy: message}`` for scores that were not finite when
    ``errors="skip"``) and ``arch`` (how the network was named)."""

    def __init__(self, *args: Any, arch: str = "", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.errors: dict[str, str] = {}
        self.arch = arch


def _resolve(proxies: Iterable[str] | str | None) -> list[str]:
    if proxies is None:
        return list(PROXY_NAMES)
    if isinstance(proxies, str):
        proxies = [p for p in proxies.split(",") if p.strip()]
    out: list[str] = []
    for p in proxies:
        key = p.strip().lower().replace("-", "_")
        key = {"jacob_cov": "jacov", "epenas": "epe_nas", "naswot": "nwot", "zen_score": "zen"}.get(key, key)
        if key not in PROXY_NAMES:
            import difflib

            close = difflib.get_close_matches(key, PROXY_NAMES, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown proxy '{p}'.{hint} Known: {', '.join(PROXY_NAMES)}")
        if key not in out:
            out.append(key)
    if not out:
        raise ConfigError(f"no proxy requested; choose among {', '.join(PROXY_NAMES)}")
    return out


def score_all(
    net: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor | None = None,
    proxies: Iterable[str] | str | None = None,
    *,
    loss_fn: LossFn | None = None,
    arch: Any = None,
    errors: str = "raise",
    settings: ProxySettings | None = None,
    **options: Any,
) -> ProxyScores:
    """Score ``net`` with several proxies at once, sharing the passes the maths allows.

    :param net: a standalone network (``space.build(arch, num_classes=...)``); left exactly as found.
    :param images: ``[B, C, H, W]`` on the device to compute on.
    :param targets: class indices for the supervised form (cross-entropy on the logits; epe_nas'
        classes). Without them the proxies are label-free: loss-based ones differentiate
        ``loss_fn(net, images)`` (see :func:`nas_proxies.objective_loss`) and epe_nas takes its classes
        from ``loss_fn.pretext_targets(images)`` when the objective has a pretext task, else from
        k-means pseudo-classes of the images.
    :param proxies: names (or a comma-separated string); default all thirteen.
    :param loss_fn: ``loss_fn(net, images) -> scalar`` for the label-free form.
    :param arch: how errors name the network (default ``net.arch``).
    :param errors: ``"raise"`` (a non-finite score raises :class:`nas_core.NonFiniteError` naming the
        proxy and the architecture) or ``"skip"`` (it is left out of the result and its message kept in
        ``result.errors``).
    :param settings: a :class:`ProxySettings`; keyword ``options`` override its fields.
    :return: a :class:`ProxyScores` dict ``{name: float}`` in the requested order.
    """
    names = _resolve(proxies)
    if errors not in ("raise", "skip"):
        raise ConfigError(f"errors must be 'raise' or 'skip', got {errors!r}")
    settings = settings or ProxySettings()
    if options:
        valid = {f.name for f in fields(ProxySettings)}
        bad = sorted(set(options) - valid)
        if bad:
            raise ConfigError(f"score_all: unknown option '{bad[0]}' (valid: {', '.join(sorted(valid))})")
        settings = replace(settings, **options)
    if not isinstance(images, torch.Tensor) or images.dim() < 2:
        raise ConfigError(f"images must be a batched tensor, got {getattr(images, 'shape', type(images).__name__)}")
    label = arch_label(net, arch)
    want = set(names)
    if want & LOSS_PROXIES and targets is None and loss_fn is None:
        needing = ", ".join(p for p in names if p in LOSS_PROXIES)
        raise ConfigError(
            f"proxies {needing} differentiate a loss: pass targets (supervised) or, label-free, "
            f"loss_fn=nas_proxies.objective_loss(objective, net) (or any loss_fn(net, images) -> scalar)"
        )
    images = images.detach()
    if targets is not None:
        targets = torch.as_tensor(targets, device=images.device).long()
        if targets.shape[0] != images.shape[0]:
            raise ConfigError(f"targets has {targets.shape[0]} entries for {images.shape[0]} images")

    raw: dict[str, float] = {}
    hints: dict[str, str] = {}
    objective = getattr(loss_fn, "objective", None) if loss_fn is not None else None
    prepare = getattr(loss_fn, "prepare", None)
    if callable(prepare) and want & LOSS_PROXIES:
        prepare(net, images)  # set the objective's heads up before its state is saved
    keep_objective = preserved_state(objective) if isinstance(objective, nn.Module) else contextlib.nullcontext()
    with preserved_state(net), keep_objective, seeded(settings.seed, images.device):
        _static_proxies(net, images, want, raw)
        with _double_backward_attention() if "grasp" in want else contextlib.nullcontext():
            _data_passes(net, images, targets, loss_fn, want, settings, raw, hints, label)
        if "synflow" in want:
            raw["synflow"], hints["synflow"] = _synflow(net, images, settings)
        if "zen" in want:
            raw["zen"], hints["zen"] = _zen(net, images, settings)

    result = ProxyScores(arch=label)
    for name in names:
        try:
            result[name] = check_finite(name, raw[name], label, hints.get(name, ""))
        except NonFiniteError as exc:
            if errors == "raise":
                raise
            result.errors[name] = str(exc)
    return result


# ----------------------------------------------------------------------------------------------
# structural proxies
# ----------------------------------------------------------------------------------------------


def _static_proxies(net: nn.Module, images: torch.Tensor, want: set[str], raw: dict[str, float]) -> None:
    if "params" in want:
        raw["params"] = sum(p.numel() for p in net.parameters()) / 1e6
    if "l2_norm" in want:
        with torch.no_grad():
            raw["l2_norm"] = float(sum(float(m.weight.detach().double().norm()) for _, m in prunable_layers(net)))
    if "flops" in want:
        raw["flops"] = count_flops(net, images[:1]) / 1e6


def count_flops(net: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of the convolutions and linear layers in one forward of ``x`` (batch 1),
    the "FLOPs" convention of NAS papers. The network runs in eval mode without gradients."""
    total = [0]

    def hook(m: nn.Module, inp: tuple[torch.Tensor, ...], out: Any) -> None:
        if not isinstance(out, torch.Tensor):
            return
        if isinstance(m, nn.modules.conv._ConvNd):
            k = math.prod(m.kernel_size)
            if m.transposed:
                total[0] += inp[0].numel() * (m.out_channels // m.groups) * k
            else:
                total[0] += out.numel() * (m.in_channels // m.groups) * k
        elif isinstance(m, nn.Linear):
            total[0] += out.numel() * m.in_features

    handles = [m.register_forward_hook(hook) for _, m in prunable_layers(net)]
    try:
        with preserved_state(net), torch.no_grad():
            net.eval()
            net(x)
    finally:
        for h in handles:
            h.remove()
    return int(total[0])


# ----------------------------------------------------------------------------------------------
# the loss pass and the input pass
# ----------------------------------------------------------------------------------------------


class _FisherHooks:
    """Collects BlockSwap's per-channel Fisher terms 0.5 * mean_n (sum_hw a * dL/da)^2 at each conv/linear
    output during the backward of the loss (and only then: ``active`` gates the other backwards)."""

    def __init__(self, layers: Sequence[tuple[str, nn.Module]]):
        self.terms: dict[nn.Module, torch.Tensor] = {}
        self.active = False
        self.handles = [m.register_forward_hook(self._forward) for _, m in layers]

    def _forward(self, m: nn.Module, inp: Any, out: Any) -> None:
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            return
        act = out.detach()
        conv = isinstance(m, nn.modules.conv._ConvNd)

        def on_grad(grad: torch.Tensor) -> None:
            if not self.active:
                return
            g = grad.detach()
            prod = act * g
            if conv and prod.dim() > 2:  # [B, C, *spatial]
                g_nk = prod.sum(dim=tuple(range(2, prod.dim())))
            elif not conv and prod.dim() > 2:  # linear on tokens: [B, *, C]
                g_nk = prod.sum(dim=tuple(range(1, prod.dim() - 1)))
            else:
                g_nk = prod
            del_k = g_nk.pow(2).mean(0).mul(0.5)
            prev = self.terms.get(m)
            self.terms[m] = del_k if prev is None else prev + del_k

        out.register_hook(on_grad)

    def score(self, layers: Sequence[tuple[str, nn.Module]], fan_in: bool) -> float:
        total = 0.0
        for _, m in layers:
            t = self.terms.get(m)
            if t is None:
                continue
            w = float(math.prod(m.weight.shape[1:])) if fan_in else 1.0
            total += float(t.abs().double().sum()) * w
        return total

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


class _CodeHooks:
    """NASWOT's kernel: K[i, j] = number of activation units where images i and j agree on the sign
    of the input of a ReLU (binary codes c: K = c c^T + (1 - c)(1 - c)^T, accumulated over layers)."""

    def __init__(self, net: nn.Module, batch: int, device: torch.device):
        self.active = False
        self.K = torch.zeros(batch, batch, dtype=torch.float64)
        self._cache: dict[int, tuple[torch.Tensor, int, torch.Tensor]] = {}
        self.handles = [m.register_forward_pre_hook(self._pre) for m in net.modules() if isinstance(m, _ACTIVATIONS)]
        self.count = 0

    def _pre(self, m: nn.Module, inp: tuple[torch.Tensor, ...]) -> None:
        if not self.active or not inp or not isinstance(inp[0], torch.Tensor):
            return
        x = inp[0]
        if x.shape[0] != self.K.shape[0]:
            return
        self.count += 1
        hit = self._cache.get(id(x))
        if hit is not None and hit[0] is x and hit[1] == x._version:
            self.K += hit[2]  # another activation of the same tensor (e.g. two ops on one cell node)
            return
        c = (x.detach() > 0).reshape(x.shape[0], -1).float()
        d = c.shape[1]
        s = c.sum(1)
        k = (2.0 * (c @ c.t()) + d - s[:, None] - s[None, :]).double().cpu()
        self._cache[id(x)] = (x, x._version, k)  # holding x keeps its id from being reused
        self.K += k

    def score(self) -> tuple[float, str]:
        if self.count == 0:
            return float("nan"), "the network has no ReLU/GELU modules to hook (functional activations are not seen)"
        sign, logdet = torch.linalg.slogdet(self.K)
        if float(sign) <= 0:
            return float("-inf"), "the activation-code kernel is singular: two images share every activation code"
        return float(logdet), ""

    def remove(self) -> None:
        self._cache.clear()
        for h in self.handles:
            h.remove()


def _data_passes(
    net: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor | None,
    loss_fn: LossFn | None,
    want: set[str],
    settings: ProxySettings,
    raw: dict[str, float],
    hints: dict[str, str],
    label: str,
) -> None:
    """The proxies that need data: the loss pass (gradient proxies) and the input pass (jacobian, codes)."""
    if not (want & LOSS_PROXIES or want & INPUT_PROXIES):
        return
    layers = prunable_layers(net)
    net.train()
    for _, m in layers:
        m.weight.requires_grad_(True)
    epe = _epe_classes(images, targets, loss_fn, settings) if "epe_nas" in want else None
    fisher = _FisherHooks(layers) if "fisher" in want else None
    codes = _CodeHooks(net, images.shape[0], images.device) if "nwot" in want else None
    try:
        jac, out_width = _forward_passes(net, images, targets, loss_fn, want, settings, raw, label, layers, fisher, codes,
                                         jac_on_images="jacov" in want or (epe is not None and epe[2] != "pretext"))
    finally:
        if fisher is not None:
            fisher.remove()
        if codes is not None:
            codes.remove()
    _input_scores(net, jac, out_width, epe, codes, want, raw, hints)


def _epe_classes(images: torch.Tensor, targets: torch.Tensor | None, loss_fn: LossFn | None,
                 settings: ProxySettings) -> tuple[torch.Tensor, torch.Tensor, str]:
    """epe_nas's (inputs, classes, source): the labels, else the objective's pretext task, else k-means
    pseudo-classes."""
    if targets is not None:
        return images, targets, "labels"
    pretext = getattr(loss_fn, "pretext_targets", None)
    got = pretext(images) if callable(pretext) else None
    if got is not None:
        return got[0].detach(), torch.as_tensor(got[1], device=images.device).long(), "pretext"
    k = min(settings.pseudo_classes, max(2, images.shape[0] // 2))  # about 2+ images per class
    return images, pseudo_targets(images, k, seed=settings.seed), "pseudo"


def _coded(codes: _CodeHooks | None, forward: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Run ``forward`` with the activation-code hooks recording (when nwot is wanted)."""
    if codes is not None:
        codes.active = True
    try:
        return forward()
    finally:
        if codes is not None:
            codes.active = False


def _forward_passes(net: nn.Module, images: torch.Tensor, targets: torch.Tensor | None, loss_fn: LossFn | None,
                    want: set[str], settings: ProxySettings, raw: dict[str, float], label: str, layers: Any,
                    fisher: _FisherHooks | None, codes: _CodeHooks | None, *,
                    jac_on_images: bool) -> tuple[torch.Tensor | None, int | None]:
    """The loss pass (scores the gradient proxies into ``raw``) and the input pass; returns the input jacobian
    (when wanted) and the output width. With targets both are one forward (supervised cross-entropy)."""
    need_loss, need_input = bool(want & LOSS_PROXIES), bool(want & INPUT_PROXIES)
    shared = targets is not None
    x = images.clone().requires_grad_(jac_on_images)
    out, out_width, jac = None, None, None
    with torch.enable_grad():
        if shared:
            out = _coded(codes, lambda: net_logits(net, x))
            out_width = out.shape[-1]
            loss = F.cross_entropy(out, targets)
        elif need_loss:
            assert loss_fn is not None
            loss = loss_fn(net, images)
        if need_loss:
            if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
                raise ConfigError(f"loss_fn must return a scalar tensor, got {getattr(loss, 'shape', loss)!r}")
            if not torch.isfinite(loss):
                raise NonFiniteError(
                    f"the loss is {float(loss.detach())} for architecture {label}: proxies "
                    f"{', '.join(sorted(want & LOSS_PROXIES))} cannot be computed"
                )
            weights = [m.weight for _, m in layers]
            _loss_proxies(loss, weights, layers, fisher, want, settings, raw, retain=shared and need_input)
        if need_input:
            if not shared:
                out = _coded(codes, lambda: net_output(net, x) if x.requires_grad else _no_grad_output(net, x))
                if out.dim() == 2:
                    out_width = out.shape[-1]
            if x.requires_grad:
                assert out is not None
                (jac,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
                jac = torch.zeros_like(x) if jac is None else jac
    return jac, out_width


def _input_scores(net: nn.Module, jac: torch.Tensor | None, out_width: int | None,
                  epe: tuple[torch.Tensor, torch.Tensor, str] | None, codes: _CodeHooks | None, want: set[str],
                  raw: dict[str, float], hints: dict[str, str]) -> None:
    """nwot, jacov and epe_nas from what the input pass recorded."""
    if "nwot" in want and codes is not None:
        raw["nwot"], hints["nwot"] = codes.score()
    jmat = jac.reshape(jac.shape[0], -1).detach().double().cpu() if jac is not None else None
    if jmat is not None and "jacov" in want:
        raw["jacov"], hints["jacov"] = jacov_score(jmat)
    if epe is None:
        return
    epe_inputs, epe_classes, epe_source = epe
    if epe_source == "pretext":
        jmat_e, _ = _input_jacobian(net, epe_inputs)
        n_classes = int(epe_classes.max()) + 1
    else:
        assert jmat is not None
        jmat_e = jmat
        n_classes = out_width if (out_width and epe_source == "labels") else int(epe_classes.max()) + 1
    raw["epe_nas"], hints["epe_nas"] = epe_nas_score(jmat_e, epe_classes.cpu(), n_classes)
    if hints["epe_nas"]:
        hints["epe_nas"] += f"; classes from {epe_source}"


def _no_grad_output(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net_output(net, x)


def _input_jacobian(net: nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, int | None]:
    x = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = net_output(net, x)
        (jac,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
    jac = torch.zeros_like(x) if jac is None else jac
    return jac.reshape(jac.shape[0], -1).detach().double().cpu(), (out.shape[-1] if out.dim() == 2 else None)


def _loss_proxies(
    loss: torch.Tensor,
    weights: list[torch.Tensor],
    layers: Sequence[tuple[str, nn.Module]],
    fisher: _FisherHooks | None,
    want: set[str],
    settings: ProxySettings,
    raw: dict[str, float],
    retain: bool,
) -> None:
    grasp = "grasp" in want
    if fisher is not None:
        fisher.active = True
    try:
        grads = torch.autograd.grad(loss, weights, create_graph=grasp, retain_graph=retain or grasp, allow_unused=True)
    finally:
        if fisher is not None:
            fisher.active = False
    g_det = [torch.zeros_like(w) if g is None else g.detach() for w, g in zip(weights, grads)]
    with torch.no_grad():
        if "grad_norm" in want:  # sum over layers of ||dL/dW||
            raw["grad_norm"] = float(sum(float(g.double().norm()) for g in g_det))
        if "snip" in want:  # sum |W * dL/dW| (= |dL/dmask| at mask 1)
            raw["snip"] = float(sum(float((w.detach() * g).abs().double().sum()) for w, g in zip(weights, g_det)))
        if "plain" in want:  # sum W * dL/dW
            raw["plain"] = float(sum(float((w.detach() * g).double().sum()) for w, g in zip(weights, g_det)))
    if fisher is not None:
        raw["fisher"] = fisher.score(layers, settings.fisher_fan_in)
    if grasp:  # -sum W * (H g): Hessian-gradient product by double backward
        z = None
        for g0, g in zip(g_det, grads):
            if g is not None and g.requires_grad:
                term = (g0 * g).sum()
                z = term if z is None else z + term
        if z is None:
            raw["grasp"] = 0.0
        else:
            hg = torch.autograd.grad(z, weights, retain_graph=retain, allow_unused=True)
            with torch.no_grad():
                raw["grasp"] = float(
                    sum(float((-w.detach() * h).double().sum()) for w, h in zip(weights, hg) if h is not None)
                )


def _double_backward_attention() -> contextlib.AbstractContextManager[Any]:
    """Attention through the math kernel: grasp differentiates the gradient, and the fused kernels of
    ``scaled_dot_product_attention`` (flash, memory-efficient, the CPU flash kernel) have no double backward."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.MATH)


def jacov_score(jac: torch.Tensor) -> tuple[float, str]:
    """Mellor et al.'s Jacobian covariance: ``-sum_i log(l_i + k) + 1 / (l_i + k)`` over the
    eigenvalues ``l`` of the correlation matrix of the per-image input Jacobians (k = 1e-5)."""
    if jac.shape[0] < 2:
        return float("nan"), "needs at least 2 images"
    std = jac.std(dim=1)
    if bool((std == 0).any()):
        return float("nan"), "an input Jacobian is constant (the output does not depend on the input), so its correlation is undefined"
    corr = torch.corrcoef(jac)
    v = torch.linalg.eigvalsh(corr)
    return float(-(torch.log(v + _EIG_EPS) + 1.0 / (v + _EIG_EPS)).sum()), ""


def epe_nas_score(jac: torch.Tensor, classes: torch.Tensor, n_classes: int) -> tuple[float, str]:
    """EPE-NAS: per class c, ``s_c = sum_ij log(|corr_ij| + k)`` of the class' Jacobian correlations;
    the score is ``sum_c |s_c|`` (up to 100 classes) or, for more classes, the mean pairwise
    ``|s_c - s_c'|`` with ``s_c`` normalised by the class size. A class with one image has the 1x1
    correlation matrix [[1]] (NASLib's behaviour; it is left out of the >100-class form)."""
    per_class: dict[int, float] = {}
    for c in sorted(int(v) for v in torch.unique(classes)):
        rows = jac[classes == c]
        if rows.shape[0] < 2:  # a 1x1 correlation matrix [[1]]; left out of the normalised (>100 classes) form
            if n_classes <= 100:
                per_class[c] = math.log(1.0 + _EIG_EPS)
            continue
        if bool((rows.std(dim=1) == 0).any()):
            return float("nan"), "an input Jacobian is constant (the output does not depend on the input)"
        corr = torch.corrcoef(rows)
        s = float(torch.log(corr.abs() + _EIG_EPS).sum())
        if n_classes > 100:
            s /= rows.shape[0]
        per_class[c] = s
    if not per_class:
        return float("nan"), "no class has two images"
    vals = np.array(list(per_class.values()))
    if n_classes <= 100:
        return float(np.abs(vals).sum()), ""
    return float(np.abs(vals[:, None] - vals[None, :]).sum() / len(vals)), ""


# ----------------------------------------------------------------------------------------------
# synflow and zen
# ----------------------------------------------------------------------------------------------


def _synflow(net: nn.Module, images: torch.Tensor, settings: ProxySettings) -> tuple[float, str]:
    """Tanaka et al.: R = 1^T f(1) of the network with |theta| weights on an all-ones input, in double
    precision; score = sum over conv/linear weights of |theta * dR/dtheta| (log of it by default)."""
    from torch.func import functional_call

    device = images.device
    layers = prunable_layers(net)
    by_id = {id(m.weight) for _, m in layers}
    params: dict[str, torch.Tensor] = {}
    grad_keys: list[str] = []
    for n, p in net.named_parameters():
        t = p.detach().abs().to(device=device, dtype=torch.float64)
        if id(p) in by_id:
            t.requires_grad_(True)
            grad_keys.append(n)
        params[n] = t
    buffers = {
        n: (b.detach().abs().to(torch.float64) if b.is_floating_point() else b) for n, b in net.named_buffers()
    }
    handles = []
    if settings.synflow_bn == "identity":
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                handles.append(m.register_forward_hook(lambda mod, inp, out: inp[0]))
    net.train(settings.synflow_bn == "train")
    x = torch.ones((1, *images.shape[1:]), dtype=torch.float64, device=device)
    try:
        with torch.enable_grad():
            out = functional_call(net, {**params, **buffers}, (x,))
            if isinstance(out, (list, tuple)):
                out = out[-1]
            r = out.sum()
            grads = torch.autograd.grad(r, [params[k] for k in grad_keys], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    total = 0.0
    with torch.no_grad():
        for k, g in zip(grad_keys, grads):
            if g is not None:
                total += float((params[k] * g).abs().sum())
    if not settings.synflow_log:
        return total, ""
    if total <= 0:
        return float("-inf"), "no synaptic flow reaches the output (the sum is 0; pass log=False for the raw sum)"
    return math.log(total), ""


def _zen(net: nn.Module, images: torch.Tensor, settings: ProxySettings) -> tuple[float, str]:
    """Zen-NAS: with Gaussian N(0, 1) conv/linear weights (batch-norm gamma 1, beta 0) and Gaussian
    inputs x, eps, Zen = log E ||f(x) - f(x + alpha eps)||_1 + sum_BN log sqrt(mean_c sigma_c^2), f the
    pre-global-pooling feature map and sigma_c^2 the batch variance each batch-norm normalises by.

    It overwrites the weights in place: call it last inside ``score_all``'s ``preserved_state``.
    """
    device = images.device
    g = torch.Generator().manual_seed(int(settings.seed))
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    scores = []
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g).to(device=device, dtype=m.weight.dtype))
                if getattr(m, "bias", None) is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)) and getattr(m, "weight", None) is not None:
                m.weight.fill_(1.0)
                m.bias.zero_()
        net.train()
        # The batch variance each BN normalises by: BNs that track statistics get momentum 1 for the
        # unperturbed forward, so running_var holds it (unbiased; rescaled by (n-1)/n below); the
        # others are measured by a hook.
        momenta = {m: m.momentum for m in bns}
        counts: dict[nn.Module, int] = {}
        measured: dict[nn.Module, torch.Tensor] = {}
        capture = [False]

        def bn_pre(m: nn.Module, inp: tuple[torch.Tensor, ...]) -> None:
            if capture[0]:
                x = inp[0]
                counts[m] = x.numel() // x.shape[1]
                if m.running_var is None:
                    measured[m] = x.var(dim=[0, *range(2, x.dim())], unbiased=False).double().mean()

        handles = [m.register_forward_pre_hook(bn_pre) for m in bns]
        try:
            for _ in range(settings.zen_repeat):
                shape = tuple(images.shape)
                x = torch.randn(shape, generator=g).to(device=device, dtype=images.dtype)
                eps = torch.randn(shape, generator=g).to(device=device, dtype=images.dtype)
                counts.clear()
                measured.clear()
                for m in bns:
                    m.momentum = 1.0
                capture[0] = True
                f = forward_features(net, x)[-1]
                capture[0] = False
                variances = []
                for m in bns:
                    if m in measured:
                        variances.append(float(measured[m]))
                    elif m in counts and m.running_var is not None:
                        n = counts[m]
                        variances.append(float(m.running_var.double().mean()) * (n - 1) / n)
                f_mix = forward_features(net, x + settings.zen_mixup * eps)[-1]
                delta = (f - f_mix).abs().double().reshape(f.shape[0], -1).sum(1).mean()
                if not float(delta) > 0:
                    return float("-inf"), "the pre-pooling features do not change with the input perturbation"
                log_bn = sum(0.5 * math.log(v) for v in variances if v > 0)
                scores.append(math.log(float(delta)) + log_bn)
        finally:
            for h in handles:
                h.remove()
            for m, mom in momenta.items():
                m.momentum = mom
    return float(np.mean(scores)), ""
