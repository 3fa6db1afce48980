"""DARTS (Liu et al., 2019) with any objective: bilevel search on a differentiable supernet.

Weights (the supernet's and the objective's heads) are trained on the train half of a deterministic split
by SGD (lr 0.025, cosine to ``lr_min``, momentum 0.9, weight decay 3e-4, gradient clipping at 5);
architecture parameters on the validation half by Adam (lr 3e-4, betas (0.5, 0.999), weight decay 1e-3),
either first order (the gradient of the validation loss) or second order (DARTS eq. 7-8: the gradient of
the validation loss after one virtual SGD step of the weights, with the Hessian-vector product by central
finite differences). With a label-free objective (MIM, rotation, ...) this is MAE-NAS / UnNAS.

Under torchrun every rank gets its slice of a shared global batch and all gradients (weights,
architecture, and the intermediate quantities of the unrolled step) are averaged across ranks, so every
rank holds the same weights and architecture parameters.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from nas_core import ConfigError, IncompatibleError, SearchResult, SearchSpace, Strategy, check_compatible, split_dataset

from ._batches import split_batch
from ._helpers import accepted_kwargs
from ._distributed import broadcast_module, reduce_tensors, sync_buffers, sync_grads
from ._results import make_result

__all__ = ["DartsSearch", "unrolled_arch_grads", "count_skips"]

DEFAULT_SKIP_OPS = ("skip_connect", "skip", "identity")


def _grads(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    gs = torch.autograd.grad(loss, list(params), allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, gs)]


def unrolled_arch_grads(
    train_loss: Callable[[], torch.Tensor],
    val_loss: Callable[[], torch.Tensor],
    weights: Sequence[torch.Tensor],
    alphas: Sequence[torch.Tensor],
    *,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    momentum_buffers: Sequence[torch.Tensor | None] | None = None,
    eps: float = 0.01,
    reduce: Callable[[list[torch.Tensor]], list[torch.Tensor]] | None = None,
    buffers: Sequence[torch.Tensor] = (),
) -> tuple[list[torch.Tensor], float]:
    """The second-order DARTS architecture gradient (eq. 7-8 of the paper).

    ``w' = w - lr * (momentum * buf + dL_train/dw + weight_decay * w)`` (one virtual SGD step), then
    ``grad_alpha = dL_val(w', alpha)/dalpha - lr * H v`` with ``v = dL_val(w', alpha)/dw'`` and the mixed
    second derivative ``H v = d^2 L_train / dalpha dw . v`` approximated by central differences at
    ``w +- R v``, ``R = eps / ||v||``. ``train_loss`` / ``val_loss`` recompute the losses with the current
    parameter values. The weights (and ``buffers``, e.g. BN statistics) are restored on return.
    ``reduce`` averages lists of tensors over ranks (identity in one process).

    Returns (architecture gradients, validation loss at ``w'``).
    """
    reduce = reduce or (lambda ts: list(ts))
    weights, alphas = list(weights), list(alphas)
    saved_w = [w.detach().clone() for w in weights]
    saved_b = [b.detach().clone() for b in buffers]
    bufs = list(momentum_buffers) if momentum_buffers is not None else [None] * len(weights)
    try:
        # virtual step w -> w'
        g_train = reduce(_grads(train_loss(), weights))
        with torch.no_grad():
            for w, g, buf in zip(weights, g_train, bufs):
                step = g + weight_decay * w
                if buf is not None and momentum:
                    step = step + momentum * buf
                w.sub_(lr * step)
        # validation gradients at w'
        lv = val_loss()
        grads = reduce(_grads(lv, alphas + weights))
        d_alpha, v = grads[: len(alphas)], grads[len(alphas) :]
        val_value = float(lv.detach())
        # Hessian-vector product by finite differences around the original w
        norm = torch.sqrt(sum((t.float() ** 2).sum() for t in v))
        r = eps / max(float(norm), 1e-12)
        with torch.no_grad():
            for w, w0, vi in zip(weights, saved_w, v):
                w.copy_(w0 + r * vi)
        g_pos = _grads(train_loss(), alphas)
        with torch.no_grad():
            for w, w0, vi in zip(weights, saved_w, v):
                w.copy_(w0 - r * vi)
        g_neg = _grads(train_loss(), alphas)
        implicit = reduce([(p - n) / (2 * r) for p, n in zip(g_pos, g_neg)])
        out = [da - lr * hv for da, hv in zip(d_alpha, implicit)]
    finally:
        with torch.no_grad():
            for w, w0 in zip(weights, saved_w):
                w.copy_(w0)
            for b, b0 in zip(buffers, saved_b):
                b.copy_(b0)
    return out, val_value


def count_skips(arch: Any, skip_ops: Sequence[str] = DEFAULT_SKIP_OPS, cell: str = "normal") -> int:
    """Skip connections in the discretised ``cell`` (DARTS genotypes: ``arch.normal``); for architectures
    without cells, in the whole architecture string."""
    part = getattr(arch, cell, None)
    if part is not None:
        names: list[str] = []
        for item in part:
            if isinstance(item, (tuple, list)) and item:
                names.append(str(item[0]))
            else:
                names.append(str(item))
        return sum(n in skip_ops for n in names)
    tokens = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", str(arch))
    return sum(t in skip_ops for t in tokens)


@dataclass
class DartsSearch(Strategy):
    """Bilevel differentiable search (first or second order) on any ``differentiable`` supernet with any
    objective. Options follow the DARTS paper; ``max_skips`` stops the search early (DARTS+) once the
    discretised normal cell holds that many skip connections."""

    epochs: int = 50
    batch_size: int = 64
    steps_per_epoch: int | None = None
    unrolled: bool = False
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    grad_clip: float | None = 5.0
    a_lr: float = 3e-4
    a_betas: tuple[float, float] = (0.5, 0.999)
    a_weight_decay: float = 1e-3
    warmup_epochs: int = 0
    val_fraction: float = 0.5
    max_skips: int | None = None
    skip_ops: tuple[str, ...] = DEFAULT_SKIP_OPS
    unroll_eps: float = 0.01
    supernet: dict[str, Any] | None = None

    needs: ClassVar[Mapping[str, frozenset[str]]] = {"objective": frozenset({"differentiable"})}
    name: ClassVar[str] = "darts"
    #: the supernet's forward runs through ``torch.compile`` when the run asks for it (``compile=True``)
    supports_compile: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"strategy 'darts': epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"strategy 'darts': batch_size must be >= 1, got {self.batch_size}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ConfigError(f"strategy 'darts': steps_per_epoch must be >= 1, got {self.steps_per_epoch}")
        if self.max_skips is not None and self.max_skips < 1:
            raise ConfigError(f"strategy 'darts': max_skips must be >= 1, got {self.max_skips}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ConfigError(f"strategy 'darts': warmup_epochs must be in [0, epochs), got {self.warmup_epochs}")
        self.a_betas = (float(self.a_betas[0]), float(self.a_betas[1]))
        self.skip_ops = tuple(self.skip_ops)

    def config(self) -> dict[str, Any]:
        return asdict(self)

    # ---------------------------------------------------------------------------------------------
    def run(self, space: SearchSpace, evaluator: Any, data: Any, context: Any) -> SearchResult:
        check_compatible(self, space, evaluator, has_labels=getattr(data, "has_labels", None))
        if data is None:
            raise ConfigError("strategy 'darts' needs image data (data=...)")
        with context.lifecycle():
            run = self._setup(space, evaluator, data, context)
            run.restore(context.load_checkpoint() or {})
            while run.epoch < self.epochs and run.stopped is None:
                self._epoch(run)
                run.checkpoint()
            return context.finish(self._result(run))

    def _setup(self, space: SearchSpace, objective: Any, data: Any, context: Any) -> _DartsRun:
        """Supernet, objective heads, optimisers and loaders (the same on every rank)."""
        supernet = space.supernet(**(self.supernet or {}))
        if "differentiable" not in getattr(supernet, "capabilities", ()) or not supernet.arch_parameters():
            raise IncompatibleError(
                f"space '{space.registered_name or space.name}' built a supernet without architecture parameters; "
                f"darts needs a differentiable supernet"
            )
        supernet = context.to_device(supernet)
        train_set, val_set = split_dataset(data, val_fraction=self.val_fraction, seed=context.seed)
        objective.setup(supernet.feature_info, in_chans=int(getattr(data, "in_chans", 3)), img_size=int(getattr(data, "img_size", 32)))
        objective.to(context.device)
        broadcast_module(supernet, context)
        broadcast_module(objective, context)
        alphas = list(supernet.arch_parameters())
        alpha_ids = {id(a) for a in alphas}
        weights = [p for p in supernet.weight_parameters() if p.requires_grad and id(p) not in alpha_ids]
        weights += [p for p in objective.parameters() if p.requires_grad]
        w_opt = torch.optim.SGD(weights, lr=self.w_lr, momentum=self.w_momentum, weight_decay=self.w_weight_decay)
        run = _DartsRun(
            strategy=self, space=space, objective=objective, context=context, supernet=supernet,
            forward_net=torch.compile(supernet) if context.compile else supernet,
            alphas=alphas, weights=weights,
            buffers=[b for b in list(supernet.buffers()) + list(objective.buffers()) if b.is_floating_point()],
            w_opt=w_opt,
            a_opt=torch.optim.Adam(alphas, lr=self.a_lr, betas=self.a_betas, weight_decay=self.a_weight_decay),
            sched=torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, T_max=self.epochs, eta_min=self.w_lr_min),
            train_loader=context.loader(train_set, self.batch_size, stream="darts/train"),
            val_loader=context.loader(val_set, self.batch_size, stream="darts/val"),
            with_labels=bool(getattr(objective, "requires_labels", False)),
        )
        run.steps = min(len(run.train_loader), len(run.val_loader))
        if self.steps_per_epoch is not None:
            run.steps = min(run.steps, self.steps_per_epoch)
        if run.steps < 1:
            raise ConfigError("strategy 'darts': no step per epoch (more data or a smaller batch_size)")
        return run

    def _arch_step(self, run: _DartsRun, xt: torch.Tensor, yt: Any, xv: torch.Tensor, yv: Any) -> float:
        """One architecture update on the validation batch (first or second order); the validation loss."""
        ctx = run.context
        if self.unrolled:
            bufs = [run.w_opt.state.get(w, {}).get("momentum_buffer") for w in run.weights]
            g_alpha, lv = unrolled_arch_grads(
                lambda: run.loss(xt, yt), lambda: run.loss(xv, yv), run.weights, run.alphas,
                lr=run.w_opt.param_groups[0]["lr"], momentum=self.w_momentum,
                weight_decay=self.w_weight_decay, momentum_buffers=bufs, eps=self.unroll_eps,
                reduce=run.reduce, buffers=run.buffers,
            )
        else:
            loss_v = run.loss(xv, yv)
            g_alpha = run.reduce(_grads(loss_v, run.alphas))
            lv = float(loss_v.detach())
        ctx.check_finite(lv, "darts validation loss", epoch=run.epoch, step=run.global_step)
        run.a_opt.zero_grad(set_to_none=True)
        for a, g in zip(run.alphas, g_alpha):
            a.grad = g.detach().clone()
        run.a_opt.step()
        return lv

    def _weight_step(self, run: _DartsRun, xt: torch.Tensor, yt: Any) -> float:
        """One SGD step of the weights (supernet and objective heads) on the training batch."""
        loss_t = run.loss(xt, yt)
        lt = run.context.check_finite(loss_t, "darts training loss", epoch=run.epoch, step=run.global_step)
        run.w_opt.zero_grad(set_to_none=True)
        for w, g in zip(run.weights, _grads(loss_t, run.weights)):
            w.grad = g
        sync_grads(run.weights, run.context)
        if self.grad_clip:
            nn.utils.clip_grad_norm_(run.weights, self.grad_clip)
        run.w_opt.step()
        return lt

    def _epoch(self, run: _DartsRun) -> None:
        ctx = run.context
        run.supernet.train()
        run.objective.train()
        t_losses: list[float] = []
        v_losses: list[float] = []
        search_alphas = run.epoch >= self.warmup_epochs
        batches = zip(run.train_loader, run.val_loader)
        for i, (tb, vb) in enumerate(ctx.progress(batches, total=run.steps, desc=f"darts epoch {run.epoch}")):
            if i >= run.steps:
                break
            xt, yt = run.batch(tb)
            xv, yv = run.batch(vb)
            if search_alphas:
                v_losses.append(self._arch_step(run, xt, yt, xv, yv))
            lt = self._weight_step(run, xt, yt)
            metrics = {"loss": lt, "lr": run.w_opt.param_groups[0]["lr"]}  # "loss": the weights' training loss
            if v_losses:
                metrics["val_loss"] = v_losses[-1]
            ctx.log_step(run.global_step, metrics)
            run.global_step += 1
            t_losses.append(lt)
        run.sched.step()
        sync_buffers(run.supernet, ctx)
        sync_buffers(run.objective, ctx)
        run.alpha_history.append(_arch_weights(run.supernet))
        arch = run.supernet.discretize()
        skips = count_skips(arch, self.skip_ops)
        # epoch metrics are averaged over ranks, so every rank records the same history
        means = torch.tensor([float(np.mean(t_losses)), float(np.mean(v_losses)) if v_losses else math.nan],
                             dtype=torch.float64, device=ctx.device)
        t_mean, v_mean = (float(t) for t in run.reduce([means])[0])
        if self.max_skips is not None and skips >= self.max_skips:
            run.stopped = run.epoch
        ctx.log_epoch(run.epoch, {"train_loss": t_mean, "val_loss": v_mean, "lr": run.w_opt.param_groups[0]["lr"],
                                  "skips": skips, "arch": str(arch)})
        run.epoch += 1

    def _final_arch(self, run: _DartsRun) -> tuple[Any, dict[str, Any]]:
        """The discretised cell; never one with a defect (no input-output path) without saying so."""
        best = run.supernet.discretize()
        defect = run.space.defect(best)
        if defect is None:
            return best, {}
        note: dict[str, Any] = {"argmax_arch": str(best), "argmax_defect": defect}
        fixed = None
        if "connected" in accepted_kwargs(run.supernet.discretize, {"connected": True})[0]:
            fixed = run.supernet.discretize(connected=True)
        if fixed is not None and run.space.defect(fixed) is None:
            note["discretize"] = "most probable cell with a path from input to output (the argmax cell has none)"
            msg = (f"darts: the highest-weighted op of every edge gives {best}, which has {defect}; returning the "
                   f"most probable cell that has a path instead: {fixed}")
            best = fixed
        else:
            note["defect"] = defect
            msg = f"darts: the discretised architecture {best} has a defect: {defect}"
        if run.context.is_main:
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
        return best, note

    def _result(self, run: _DartsRun) -> SearchResult:
        ctx = run.context
        best, note = self._final_arch(run)
        history = ctx.epoch_history()
        last_val = next((h["val_loss"] for h in reversed(history) if "val_loss" in h), math.nan)
        fitness = -float(last_val) if isinstance(last_val, (int, float)) and math.isfinite(last_val) else math.nan
        if ctx.is_main:
            ctx.candidate_evaluated(best, {"fitness": fitness})
        extra = {
            "op_names": {k: list(v) for k, v in run.supernet.op_names().items()},
            "epochs_run": run.epoch,
            "early_stopped_at": run.stopped,
            "skips": count_skips(best, self.skip_ops),
            "order": 2 if self.unrolled else 1,
            **note,
        }
        val = float(last_val) if isinstance(last_val, (int, float)) else math.nan
        return make_result(
            self, run.space, [(best, {"fitness": fitness, "val_loss": val})], ctx, kind="objective",
            evaluator_name=getattr(run.objective, "registered_name", "") or type(run.objective).__name__,
            arch_weights=_to_lists(_arch_weights(run.supernet)),
            arch_weights_history=[_to_lists(h) for h in run.alpha_history], best=best, extra=extra,
        )


@dataclass
class _DartsRun:
    """The state of one DARTS search: modules, optimisers, loaders and progress (checkpointed per epoch)."""

    strategy: DartsSearch
    space: SearchSpace
    objective: Any
    context: Any
    supernet: nn.Module
    forward_net: Any
    alphas: list[torch.Tensor]
    weights: list[torch.Tensor]
    buffers: list[torch.Tensor]
    w_opt: torch.optim.Optimizer
    a_opt: torch.optim.Optimizer
    sched: Any
    train_loader: Any
    val_loader: Any
    with_labels: bool
    steps: int = 0
    epoch: int = 0
    global_step: int = 0
    stopped: int | None = None
    alpha_history: list[dict[str, Any]] = field(default_factory=list)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        with self.context.autocast():
            return self.objective.loss(self.forward_net, x, y) if y is not None else self.objective.loss(self.forward_net, x)

    def reduce(self, ts: list[torch.Tensor]) -> list[torch.Tensor]:
        return reduce_tensors(ts, self.context)

    def batch(self, b: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        x, y = split_batch(b)
        x = self.context.to_device(x)
        y = self.context.to_device(y) if (self.with_labels and y is not None) else None
        return x, y

    def restore(self, state: Mapping[str, Any]) -> None:
        if not state:
            return
        self.supernet.load_state_dict(state["supernet"])
        self.objective.load_state_dict(state["objective"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.sched.load_state_dict(state["sched"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.alpha_history = [_from_lists(h) for h in state["alpha_history"]]
        stopped = state.get("stopped")
        self.stopped = None if stopped is None or int(stopped) < 0 else int(stopped)

    def checkpoint(self) -> None:
        self.context.save_checkpoint({
            "supernet": self.supernet.state_dict(),
            "objective": self.objective.state_dict(),
            "w_opt": self.w_opt.state_dict(),
            "a_opt": self.a_opt.state_dict(),
            "sched": self.sched.state_dict(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "alpha_history": [_to_lists(h) for h in self.alpha_history],
            "stopped": -1 if self.stopped is None else self.stopped,
        })


def _arch_weights(supernet: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().cpu().clone() for k, v in supernet.arch_weights().items()}


def _to_lists(weights: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in weights.items()}


def _from_lists(weights: Mapping[str, Any]) -> dict[str, Any]:
    return {k: torch.tensor(v) for k, v in weights.items()}
