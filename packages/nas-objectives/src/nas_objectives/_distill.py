"""``distill`` (MaskTAS): masked distillation from a frozen MIM-pretrained teacher, scored by
teacher-student consistency; and the teacher's own MIM pre-training in one call."""

from __future__ import annotations

import copy
import hashlib
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from nas_core import ConfigError, FeatureInfo, forward_features

from ._common import (
    check_image_batch,
    content_key,
    default_patch_size,
    eval_mode,
    feature_info_of,
    fixed_generator,
    mask_to_pixels,
    masked_forward,
    normalize,
)
from ._mim import MIM

__all__ = [
    "Distill",
    "TeacherEncoder",
    "TimmFeatures",
    "build_teacher",
    "pretrain_teacher",
    "save_teacher",
    "load_teacher",
    "relation_consistency",
    "DEFAULT_TEACHER",
]

#: The teacher built when none is given: a ViT (MaskTAS distils from an MAE ViT), pre-trained with MIM on the
#: run's data before the search (:meth:`Distill.prepare`).
DEFAULT_TEACHER = "vit_small_patch16_224"
_FORMAT = "nas_objectives.teacher"


# -- teachers --------------------------------------------------------------------------------------
class TimmFeatures(nn.Module):
    """A timm model built with ``features_only=True``: ``forward(x) -> list`` of NCHW maps and a
    :class:`nas_core.FeatureInfo`."""

    def __init__(self, name: str, build_kwargs: Mapping[str, Any] | None = None):
        super().__init__()
        try:
            import timm
        except ImportError as exc:  # pragma: no cover - timm is a dependency
            raise ConfigError(f"building the teacher '{name}' by name needs timm: pip install timm") from exc
        kwargs = dict(build_kwargs or {})
        self.name = name
        try:
            self.model = timm.create_model(name, pretrained=False, features_only=True, **kwargs)
        except RuntimeError as exc:
            raise ConfigError(
                f"teacher: timm cannot build '{name}' ({exc}); pass a timm model name (timm.list_models()), a "
                f"checkpoint path written by pretrain_teacher(), or an nn.Module"
            ) from exc
        self.build_kwargs = kwargs
        self.feature_info = FeatureInfo([dict(d) for d in self.model.feature_info.get_dicts()])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.model(x))


def _timm_features(name: str, img_size: int, patch_size: int, extra: Mapping[str, Any] | None) -> TimmFeatures:
    extra = dict(extra or {})
    if "img_size" not in extra and "patch_size" not in extra:
        try:  # ViT-family models take the input and patch size; CNNs reject them
            return TimmFeatures(name, {"img_size": img_size, "patch_size": patch_size, **extra})
        except TypeError:
            pass
    return TimmFeatures(name, extra)


class TeacherEncoder(nn.Module):
    """An encoder pre-trained by masked image modelling, with the mask token it learned.

    ``forward(x, mask=None)``: ``x`` normalised images, ``mask`` a bool patch mask at any grid that
    tiles the image; hidden pixels become the learned token before the backbone runs.
    """

    supports_patch_mask = True
    patch_size = None  # accepts any mask grid

    def __init__(
        self,
        backbone: nn.Module,
        mask_token: torch.Tensor | None = None,
        *,
        name: str | None = None,
        build_kwargs: Mapping[str, Any] | None = None,
        img_size: int | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.feature_info = feature_info_of(backbone, img_size)
        token = torch.zeros(3) if mask_token is None else mask_token.detach().clone().float()
        self.mask_token = nn.Parameter(token)
        self.name = name
        self.build_kwargs = dict(build_kwargs or {})
        self.history: list[float] = []

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        if mask is None:
            return forward_features(self.backbone, x)
        patch = x.shape[-1] // mask.shape[-1]
        return masked_forward(self.backbone, x, mask, patch, self.mask_token)


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    raise ConfigError(f"teacher build option {value!r} is not a plain value and cannot be saved in a checkpoint")


def save_teacher(teacher: TeacherEncoder, path: str | Path) -> Path:
    """Write ``teacher`` atomically (temp file + rename) in a ``weights_only``-loadable format."""
    from nas_core import save_checkpoint

    state = {
        "format": _FORMAT,
        "version": 1,
        "name": teacher.name,
        "build_kwargs": _plain(teacher.build_kwargs),
        "state_dict": {k: v.detach().cpu() for k, v in teacher.state_dict().items()},
        "history": [float(v) for v in teacher.history],
    }
    return save_checkpoint(state, path)


def _freeze(module: nn.Module) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def load_teacher(path: str | Path, module: nn.Module | None = None) -> TeacherEncoder:
    """Rebuild a teacher saved by :func:`pretrain_teacher`/:func:`save_teacher` (frozen, eval mode).

    A teacher built from a timm name is rebuilt by name; a teacher made from your own module needs
    that ``module`` (freshly constructed) to load the weights into.
    """
    from nas_core import load_checkpoint

    state = load_checkpoint(path)
    if state.get("format") != _FORMAT:
        raise ConfigError(
            f"'{path}' is not a teacher checkpoint written by pretrain_teacher(); to load plain weights into a timm "
            f"model use Distill(teacher='<timm name>', teacher_checkpoint='{path}')"
        )
    if module is None:
        if not state.get("name"):
            raise ConfigError(
                f"teacher checkpoint '{path}' was made from a custom module; pass load_teacher(path, module=<a fresh "
                f"instance of that module>)"
            )
        module = TimmFeatures(state["name"], state.get("build_kwargs") or {})
    enc = TeacherEncoder(module, name=state.get("name"), build_kwargs=state.get("build_kwargs") or {})
    enc.load_state_dict(state["state_dict"])
    enc.history = list(state.get("history") or [])
    return _freeze(enc)  # type: ignore[return-value]


def _load_weights(module: nn.Module, path: str | Path) -> None:
    from nas_core import load_checkpoint

    state = load_checkpoint(path)
    if state.get("format") == _FORMAT:
        sd = state["state_dict"]
        sd = {k[len("backbone.") :]: v for k, v in sd.items() if k.startswith("backbone.")}
    else:
        sd = state.get("state_dict") or state.get("model") or state
    sd = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    own = module.state_dict()
    for prefix in ("", "model."):  # timm features_only wrappers may prefix the keys
        cand = {prefix + k: v for k, v in sd.items()}
        hits = {k: v for k, v in cand.items() if k in own and own[k].shape == v.shape}
        if hits:
            module.load_state_dict(hits, strict=False)
            return
    raise ConfigError(
        f"teacher_checkpoint '{path}': none of its {len(sd)} tensors match the teacher's parameters "
        f"(e.g. {next(iter(own), '?')}); is it a checkpoint of the same model?"
    )


def build_teacher(
    teacher: str | Path | nn.Module = DEFAULT_TEACHER,
    *,
    img_size: int = 32,
    patch_size: int = 4,
    checkpoint: str | Path | None = None,
    build_kwargs: Mapping[str, Any] | None = None,
) -> nn.Module:
    """A teacher module from an ``nn.Module`` (used as is), a checkpoint written by :func:`pretrain_teacher`
    (a path), or a timm model name (``pretrained=False``: nothing is downloaded; ViTs are built for
    ``img_size`` with ``patch_size`` patches). ``checkpoint`` loads weights into a named model."""
    if isinstance(teacher, nn.Module):
        module = teacher
    elif isinstance(teacher, (str, Path)) and Path(teacher).expanduser().is_file():
        module = load_teacher(Path(teacher).expanduser())
    elif isinstance(teacher, str):
        module = _timm_features(teacher, img_size, patch_size, build_kwargs)
    else:
        raise ConfigError(f"teacher must be a timm model name, a checkpoint path or an nn.Module, got {type(teacher).__name__}")
    if checkpoint is not None:
        _load_weights(module, Path(checkpoint).expanduser())
    return module


# -- relation maps ---------------------------------------------------------------------------------
def _tokens(
    zs: torch.Tensor, zt: torch.Tensor, visible: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Student/teacher last-stage maps on a common grid (the coarser of the two, by average pooling) as
    tokens ``[B, N, C]``, and the visible fraction of every token ``[B, N]``."""
    h, w = min(zs.shape[-2], zt.shape[-2]), min(zs.shape[-1], zt.shape[-1])
    if zs.shape[-2:] != (h, w):
        zs = F.adaptive_avg_pool2d(zs, (h, w))
    if zt.shape[-2:] != (h, w):
        zt = F.adaptive_avg_pool2d(zt, (h, w))
    vis = F.adaptive_avg_pool2d(visible.float(), (h, w))
    return zs.flatten(2).transpose(1, 2), zt.flatten(2).transpose(1, 2), vis.flatten(1)


def relation_consistency(
    z_student: torch.Tensor,
    z_teacher: torch.Tensor,
    *,
    tau: float = 0.1,
    valid: torch.Tensor | None = None,
    normalize_tokens: bool = True,
) -> torch.Tensor:
    """MaskTAS eq. 15-16 per image: ``-(1/N) sum_j sum_k R^t_jk log R^s_jk`` with relation maps
    ``R = softmax(Z Z^T / tau)`` over the tokens of each image - the cross-entropy between the teacher's
    and the student's token relations (lower = more consistent). ``valid`` (bool ``[B, N]``) restricts
    rows and columns to visible tokens. Returns ``[B]``."""
    zs, zt = z_student.float(), z_teacher.float()
    if normalize_tokens:
        zs, zt = F.normalize(zs, dim=-1), F.normalize(zt, dim=-1)
    ls = zs @ zs.transpose(1, 2) / tau
    lt = zt @ zt.transpose(1, 2) / tau
    if valid is None:
        valid = torch.ones(zs.shape[:2], dtype=torch.bool, device=zs.device)
    col = valid.unsqueeze(1)
    neg = torch.finfo(ls.dtype).min
    rt = F.softmax(lt.masked_fill(~col, neg), dim=-1)
    log_rs = F.log_softmax(ls.masked_fill(~col, neg), dim=-1)
    ce_rows = -torch.where(col, rt * log_rs, torch.zeros((), device=zs.device)).sum(-1)  # [B, N]
    rows = valid.float()
    return (ce_rows * rows).sum(-1) / rows.sum(-1).clamp_min(1)


# -- objective -------------------------------------------------------------------------------------
class Distill(MIM):
    """MaskTAS: the student reconstructs masked pixels (normalised patches, L2) and predicts the frozen
    teacher's features of the same masked input through a projector (eq. 9-11)::

        loss = L_reg(P~, X_m) + beta * SmoothL1(LN(projector(Z_s)), LN(Z_t))

    ``score`` is the teacher-consistency metric (eq. 13-16): relation maps ``softmax(Z Z^T / tau)`` of
    student and teacher tokens (the last stage's NCHW map flattened, both brought to the coarser grid)
    compared by cross-entropy; the score is its negative mean, so higher is better and the maximum is
    reached when the student's relations equal the teacher's.

    :param teacher: an ``nn.Module`` (any backbone returning multi-scale NCHW maps, used as given), a
        checkpoint path written by :func:`pretrain_teacher`, or a timm model name (default
        ``vit_small_patch16_224`` at the data's size and mask patch size; nothing is downloaded). A teacher by
        name without ``teacher_checkpoint`` is pre-trained with MIM on the run's own data before the search
        (MaskTAS algorithm 1, step 2: :meth:`prepare`, which ``nas_core.search`` calls), cached, and reported in
        the run's history; it is never used with random weights unless ``pretrain_steps=0`` asks for that.
    :param teacher_checkpoint: weights for a teacher given by name (ours, ``{"model": ...}``,
        ``{"state_dict": ...}`` or a raw state dict).
    :param pretrain_steps: MIM steps of that pre-training (``0``: distil from random weights, on purpose).
    :param pretrain_batch_size: its batch size; ``pretrain_lr``: its AdamW learning rate.
    :param teacher_cache: directory of pre-trained teachers, keyed by the data, the teacher and the
        pre-training options (default ``$NAS_CACHE_DIR/teachers``, ``~/.cache/nas/teachers``; ``""``: no cache).
    :param teacher_kwargs: extra options for ``timm.create_model``.
    :param teacher_stage: which teacher stage gives its tokens (default the last; pick an earlier one when
        a CNN teacher's last stage is too coarse for the images, e.g. 1x1 on 32x32 inputs).
    :param mask_ratio: MaskTAS default 0.9.
    :param beta: weight of the feature-prediction term.
    :param tau: temperature of the relation maps.
    :param normalize_tokens: L2-normalise tokens before ``Z Z^T`` (cosine relations; teacher and student
        widths differ, so raw dot products are not on one scale).
    :param tokens: ``visible`` (default, eq. 15 sums over visible patches: tokens whose cell is at
        least partly visible; the feature term is weighted by the visible fraction) or ``all``.
    :param projector_hidden: hidden width of the 2-layer projector MLP (default: max of both widths).
    :param smooth_l1_beta: the SmoothL1 transition point.

    The teacher is frozen (``requires_grad=False``), stays in eval mode whatever ``train()`` is called
    with, and runs under ``torch.no_grad``; it is part of ``state_dict`` so checkpoints resume.
    """

    requires_labels: ClassVar[bool] = False

    def __init__(
        self,
        *,
        teacher: str | nn.Module = DEFAULT_TEACHER,
        teacher_checkpoint: str | None = None,
        teacher_kwargs: dict[str, Any] | None = None,
        teacher_stage: int = -1,
        pretrain_steps: int = 200,
        pretrain_batch_size: int = 64,
        pretrain_lr: float = 1e-3,
        teacher_cache: str | None = None,
        mask_ratio: float = 0.9,
        patch_size: int | None = None,
        beta: float = 1.0,
        tau: float = 0.1,
        normalize_tokens: bool = True,
        tokens: str = "visible",
        projector_hidden: int | None = None,
        smooth_l1_beta: float = 1.0,
        decoder: str = "hierarchical",
        decoder_dim: int | None = None,
        loss: str = "l2",
        norm_pix_loss: bool = True,
        seed: int = 0,
        score_repeats: int = 1,
    ):
        super().__init__(
            mask_ratio=mask_ratio,
            patch_size=patch_size,
            decoder=decoder,
            decoder_dim=decoder_dim,
            loss=loss,
            norm_pix_loss=norm_pix_loss,
            seed=seed,
            score_repeats=score_repeats,
        )
        name = self._name()
        if tokens not in ("visible", "all"):
            raise ConfigError(f"objective '{name}': tokens must be 'visible' or 'all', got '{tokens}'")
        if float(tau) <= 0:
            raise ConfigError(f"objective '{name}': tau must be positive, got {tau}")
        if float(beta) < 0:
            raise ConfigError(f"objective '{name}': beta must be >= 0, got {beta}")
        if int(pretrain_steps) < 0 or int(pretrain_batch_size) < 1 or not float(pretrain_lr) > 0:
            raise ConfigError(
                f"objective '{name}': pretrain_steps must be >= 0, pretrain_batch_size >= 1 and pretrain_lr > 0, got "
                f"{pretrain_steps}, {pretrain_batch_size}, {pretrain_lr}"
            )
        # kept out of the module tree until build_heads (a module argument must not join parameters() here)
        object.__setattr__(self, "_teacher_spec", teacher)
        self.teacher_checkpoint = teacher_checkpoint
        self.teacher_kwargs = dict(teacher_kwargs or {})
        self.teacher_stage = int(teacher_stage)
        self.beta = float(beta)
        self.tau = float(tau)
        self.normalize_tokens = bool(normalize_tokens)
        self.tokens = tokens
        self.projector_hidden = projector_hidden
        self.smooth_l1_beta = float(smooth_l1_beta)
        self.pretrain_steps = int(pretrain_steps)
        self.pretrain_batch_size = int(pretrain_batch_size)
        self.pretrain_lr = float(pretrain_lr)
        self.teacher_cache = teacher_cache
        #: what :meth:`prepare` did: steps, first and final MIM loss, whether the cache held it, the file
        self.teacher_report: dict[str, Any] | None = None
        self._teacher_cache: OrderedDict[tuple[Any, ...], torch.Tensor] = OrderedDict()

    # -- the teacher's pre-training ------------------------------------------------------------------
    @property
    def needs_pretraining(self) -> bool:
        """Whether the teacher is a bare architecture (a timm name without weights) that :meth:`prepare` trains."""
        spec = self._teacher_spec
        return (isinstance(spec, str) and not Path(spec).expanduser().is_file() and self.teacher_checkpoint is None
                and self.pretrain_steps > 0)

    def prepare(self, data: Any, context: Any) -> None:
        """Pre-train the teacher with MIM on the run's ``data`` (MaskTAS algorithm 1, step 2) when it was given
        by name only: ``pretrain_steps`` AdamW steps, the result cached (the same data, teacher and options load
        it back, on every rank) and reported to the run's history (a ``phase: teacher`` record, epoch -1)."""
        if not self.needs_pretraining:
            return
        if data is None or len(data) == 0:
            raise ConfigError(f"objective '{self._name()}': pre-training the teacher needs the run's images (data=...)")
        size = int(getattr(data, "img_size", 0) or _first_image(data).shape[-1])
        patch = int(self.patch_size or default_patch_size(size))
        options = {"teacher": self._teacher_spec, "teacher_kwargs": self.teacher_kwargs, "steps": self.pretrain_steps,
                   "batch_size": self.pretrain_batch_size, "lr": self.pretrain_lr, "img_size": size, "patch": patch,
                   "seed": self.seed, "data": _data_key(data)}
        path = self._cache_path(options)
        cached = path is not None and path.is_file()
        if cached:
            teacher = load_teacher(path)
        else:
            if path is None or context.is_main:  # without a cache every rank trains its own (the same) teacher
                teacher = pretrain_teacher(
                    self._teacher_spec, data, steps=self.pretrain_steps, batch_size=self.pretrain_batch_size,
                    lr=self.pretrain_lr, img_size=size, patch_size=patch, teacher_kwargs=self.teacher_kwargs,
                    device=context.device, seed=self.seed, checkpoint=path,
                )
            context.barrier()  # the other ranks load what the main rank trained
            if path is not None and not context.is_main:
                teacher = load_teacher(path)
        object.__setattr__(self, "_teacher_spec", teacher)
        hist = teacher.history
        self.teacher_report = {"phase": "teacher", "teacher_steps": len(hist), "teacher_mim_loss_start": hist[0],
                               "teacher_mim_loss": hist[-1], "teacher_cached": cached, "teacher_checkpoint": str(path)}
        context.log_epoch(-1, self.teacher_report)

    def _cache_path(self, options: Mapping[str, Any]) -> Path | None:
        if self.teacher_cache == "":
            return None
        root = Path(self.teacher_cache or Path(os.environ.get("NAS_CACHE_DIR", Path.home() / ".cache" / "nas")) / "teachers")
        key = hashlib.sha256(repr(sorted((k, str(v)) for k, v in options.items())).encode()).hexdigest()[:20]
        return root.expanduser() / f"{options['teacher']}-{key}.pt"

    # -- heads -------------------------------------------------------------------------------------
    def build_heads(self, feature_info: FeatureInfo) -> None:
        super().build_heads(feature_info)
        if not isinstance(getattr(self, "teacher", None), nn.Module):
            if self.needs_pretraining:
                raise ConfigError(
                    f"objective '{self._name()}': the teacher '{self._teacher_spec}' has no weights yet. Run the search "
                    f"through nas_core.search / `nas search` (they pre-train it with MIM on the run's data), call "
                    f"objective.prepare(data, context) before the strategy, pass teacher=<a checkpoint written by "
                    f"nas_objectives.pretrain_teacher() or a module> or teacher_checkpoint=..., or pretrain_steps=0 to "
                    f"distil from random weights on purpose"
                )
            patch = self.patch_size or default_patch_size(self.img_size)
            built = build_teacher(
                self._teacher_spec,
                img_size=self.img_size,
                patch_size=patch,
                checkpoint=self.teacher_checkpoint,
                build_kwargs=self.teacher_kwargs,
            )
            if built is self._teacher_spec and any(p.requires_grad for p in built.parameters()):
                built = copy.deepcopy(built)  # never freeze the caller's module in place
            self.teacher = _freeze(built)
        t_fi = feature_info_of(self.teacher, self.img_size, self.in_chans)
        try:
            ct = t_fi.channels()[self.teacher_stage]
        except IndexError as exc:
            raise ConfigError(
                f"objective '{self._name()}': teacher_stage={self.teacher_stage} but the teacher has {len(t_fi)} stages"
            ) from exc
        cs = feature_info.channels()[-1]
        hidden = int(self.projector_hidden or max(cs, ct))
        self.projector = nn.Sequential(nn.Linear(cs, hidden), nn.GELU(), nn.Linear(hidden, ct))
        self._teacher_cache.clear()

    def train(self, mode: bool = True) -> Distill:
        super().train(mode)
        teacher = self._modules.get("teacher")
        if teacher is not None:
            teacher.eval()
        return self

    # -- teacher -----------------------------------------------------------------------------------
    @torch.no_grad()
    def _teacher_last(self, x: torch.Tensor, mask: torch.Tensor, patch: int) -> torch.Tensor:
        return masked_forward(self.teacher, x, mask, patch, None)[self.teacher_stage]

    def _visible(self, mask: torch.Tensor, patch: int) -> torch.Tensor:
        return ~mask_to_pixels(mask, patch)

    def _feature_loss(self, zs: torch.Tensor, zt: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        s_tok, t_tok, vis = _tokens(zs, zt, visible)
        pred = self.projector(s_tok).float()
        tgt = t_tok.float()
        per_tok = F.smooth_l1_loss(
            F.layer_norm(pred, pred.shape[-1:]), F.layer_norm(tgt, tgt.shape[-1:]), beta=self.smooth_l1_beta, reduction="none"
        ).mean(-1)
        if self.tokens == "visible":
            return (per_tok * vis).sum() / vis.sum().clamp_min(1e-6)
        return per_tok.mean()

    def _masked_loss(self, backbone: nn.Module, images: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, patch: int) -> torch.Tensor:
        l_reg, feats = self._recon_loss(backbone, images, target, mask, patch)
        zt = self._teacher_last(normalize(images), mask, patch)
        return l_reg + self.beta * self._feature_loss(feats[-1], zt, self._visible(mask, patch))

    def consistency(
        self, backbone: nn.Module, images: torch.Tensor, mask: torch.Tensor, patch: int, teacher_last: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-image relation cross-entropy (eq. 15) between ``backbone`` and the teacher on one mask."""
        x = normalize(images)
        zs = self.encode(backbone, x, mask, patch)[-1]
        zt = teacher_last if teacher_last is not None else self._teacher_last(x, mask, patch)
        s_tok, t_tok, vis = _tokens(zs, zt, self._visible(mask, patch))
        valid = vis > 0 if self.tokens == "visible" else None
        return relation_consistency(s_tok, t_tok, tau=self.tau, valid=valid, normalize_tokens=self.normalize_tokens)

    def _cached_teacher(self, images: torch.Tensor, mask: torch.Tensor, patch: int, rep: int) -> torch.Tensor:
        # the teacher is frozen: its tokens on the same images and masks are reused across candidates
        key = (
            id(self.teacher),
            tuple(images.shape),
            str(images.device),
            images.dtype,
            rep,
            patch,
            tuple(content_key(images).tolist()),
        )
        hit = self._teacher_cache.get(key)
        if hit is None:
            hit = self._teacher_last(normalize(images), mask, patch)
            self._teacher_cache[key] = hit
            while len(self._teacher_cache) > 4:
                self._teacher_cache.popitem(last=False)
        return hit

    @torch.no_grad()
    def score(self, backbone: nn.Module, images: torch.Tensor) -> float:
        """Teacher-consistency (MaskTAS eq. 13-16) on masks drawn from a generator seeded with ``seed``:
        the negative mean relation cross-entropy; higher is better."""
        images = check_image_batch(images, self._name())
        gen = fixed_generator(self.seed)
        total = 0.0
        with eval_mode(self):
            for rep in range(self.score_repeats):
                mask, patch = self.draw_mask(backbone, images, gen)
                zt = self._cached_teacher(images, mask, patch, rep)
                total += float(self.consistency(backbone, images, mask, patch, zt).mean())
        return -total / self.score_repeats

    def extra_repr(self) -> str:
        return super().extra_repr() + f", beta={self.beta}, tau={self.tau}, tokens={self.tokens}"


# -- teacher pre-training (MaskTAS algorithm 1, step 2) --------------------------------------------
def pretrain_teacher(
    teacher: str | nn.Module = DEFAULT_TEACHER,
    data: Any = None,
    *,
    steps: int = 1000,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    img_size: int | None = None,
    mask_ratio: float = 0.75,
    patch_size: int | None = None,
    decoder: str = "hierarchical",
    loss: str = "l2",
    norm_pix_loss: bool = True,
    teacher_kwargs: dict[str, Any] | None = None,
    device: str | torch.device | None = "auto",
    seed: int = 0,
    checkpoint: str | Path | None = None,
    log_every: int = 0,
    callback: Callable[[int, float], None] | None = None,
) -> TeacherEncoder:
    """Pre-train a teacher by masked image modelling (the ``mim`` objective) and return it frozen.

    :param teacher: a timm model name (random init), an ``nn.Module`` backbone (deep-copied, the
        argument is left untouched) or a :class:`TeacherEncoder` to continue training.
    :param data: anything ``nas_core.load_data`` opens (default: the embedded digits).
    :param steps: optimisation steps (AdamW, cosine decay).
    :param mask_ratio: MAE's 0.75 by default; ``loss``/``norm_pix_loss``: MAE's normalised-pixel L2.
    :param checkpoint: if given, the teacher is saved there atomically (:func:`load_teacher` reads it,
        and ``Distill(teacher=path)`` accepts the path).
    :param callback: called as ``callback(step, loss)`` after every step.

    The run is deterministic for a given ``seed`` on a given device; the global RNG state is restored.
    The returned :class:`TeacherEncoder` holds the learned mask token and ``history`` (loss per step).
    """
    from nas_core import ImageData, load_data, select_device

    if steps < 1 or batch_size < 1:
        raise ConfigError(f"pretrain_teacher: steps and batch_size must be >= 1, got {steps}, {batch_size}")
    ds = data if isinstance(data, ImageData) else load_data(data, img_size=img_size or 32)
    size = int(img_size or ds.img_size)
    dev = select_device(device)
    patch = int(patch_size or default_patch_size(size))
    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        enc = _trainable_encoder(teacher, size, patch, teacher_kwargs)
        mim = MIM(mask_ratio=mask_ratio, patch_size=patch, decoder=decoder, loss=loss, norm_pix_loss=norm_pix_loss, seed=seed)
        mim.setup(enc.feature_info, in_chans=3, img_size=size)
        with torch.no_grad():
            mim.mask_token.copy_(enc.mask_token)
        enc.to(dev)
        mim.to(dev)
        history = _train_mim(enc.backbone, mim, ds, dev, steps=steps, batch_size=batch_size, lr=lr,
                             weight_decay=weight_decay, seed=seed, log_every=log_every, callback=callback)
        with torch.no_grad():
            enc.mask_token.copy_(mim.mask_token)
    enc.history = list(enc.history) + history
    _freeze(enc)
    if checkpoint is not None:
        save_teacher(enc, checkpoint)
    return enc


def _trainable_encoder(teacher: str | nn.Module, size: int, patch: int, teacher_kwargs: Mapping[str, Any] | None) -> TeacherEncoder:
    """The encoder to pre-train: a :class:`TeacherEncoder` continues (unfrozen), a module is deep-copied, a name is
    built (random initialisation)."""
    if isinstance(teacher, TeacherEncoder):
        for p in teacher.parameters():
            p.requires_grad_(True)
        return teacher
    if isinstance(teacher, nn.Module):
        backbone = copy.deepcopy(teacher)
        for p in backbone.parameters():
            p.requires_grad_(True)
    else:
        backbone = build_teacher(teacher, img_size=size, patch_size=patch, build_kwargs=teacher_kwargs)
    timm_built = isinstance(backbone, TimmFeatures)
    return TeacherEncoder(backbone, name=backbone.name if timm_built else None,
                          build_kwargs=backbone.build_kwargs if timm_built else {}, img_size=size)


def _train_mim(backbone: nn.Module, mim: MIM, ds: Any, dev: torch.device, *, steps: int, batch_size: int, lr: float,
               weight_decay: float, seed: int, log_every: int, callback: Callable[[int, float], None] | None) -> list[float]:
    """``steps`` AdamW steps (cosine decay) of ``mim``'s loss on shuffled batches of ``ds``; the loss per step."""
    params = [p for p in backbone.parameters() if p.requires_grad] + list(mim.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=min(batch_size, len(ds)), shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(seed)
    )
    backbone.train()
    mim.train()
    history: list[float] = []
    while len(history) < steps:
        for batch in loader:
            images = (batch[0] if isinstance(batch, (tuple, list)) else batch).to(dev)
            value = mim.loss(backbone, images)
            if not torch.isfinite(value):
                raise ConfigError(
                    f"pretrain_teacher: the loss became {float(value)} at step {len(history)}; lower lr (now {lr})"
                )
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            sched.step()
            history.append(value.item())
            if callback is not None:
                callback(len(history) - 1, history[-1])
            if log_every and (len(history) - 1) % log_every == 0:
                print(f"pretrain_teacher step {len(history) - 1}/{steps} loss {history[-1]:.4f}")
            if len(history) >= steps:
                break
    return history


def _first_image(data: Any) -> torch.Tensor:
    item = data[0]
    return item[0] if isinstance(item, (tuple, list)) else item


def _data_key(data: Any, n: int = 16) -> str:
    """A short hash of what the data is: its kind, length, and the content of ``n`` evenly spread images."""
    total = len(data)
    h = hashlib.sha256(f"{type(data).__name__}|{getattr(data, 'name', '')}|{total}".encode())
    for i in sorted({int(j * (total - 1) / max(1, n - 1)) for j in range(min(n, total))}):
        item = data[i]
        img = item[0] if isinstance(item, (tuple, list)) else item
        h.update(torch.as_tensor(img).detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
