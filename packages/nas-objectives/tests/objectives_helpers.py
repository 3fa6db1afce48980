"""Tiny backbones for the tests (the real spaces live in nas-spaces)."""

from __future__ import annotations

import torch
import torch.nn as nn

from nas_core import FeatureInfo, NasPluginManager


class TinyCNN(nn.Module):
    """Three stages at reductions 1/2/4 (the NB201 layout), BN + ReLU."""

    def __init__(self, chs: int = 8):
        super().__init__()
        widths = [chs, 2 * chs, 4 * chs]
        self.stages = nn.ModuleList()
        cin = 3
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            self.stages.append(
                nn.Sequential(nn.Conv2d(cin, w, 3, stride, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                              nn.Conv2d(w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
            )
            cin = w
        self.feature_info = FeatureInfo([{"num_chs": w, "reduction": 2**i, "module": f"stages.{i}"} for i, w in enumerate(widths)])

    def forward(self, x):
        feats = []
        for s in self.stages:
            x = s(x)
            feats.append(x)
        return feats


class TinyTokenViT(nn.Module):
    """A ViT-like backbone that masks tokens: ``forward(x, mask=bool[B, H/p, W/p])`` replaces the embeddings
    of hidden patches by a learned mask token (SimMIM-style), then mixes tokens with attention.

    Records the last mask and input it received, so tests can see what the objective passed.
    """

    supports_patch_mask = True

    def __init__(self, dim: int = 16, patch: int = 4, depth: int = 2, img_size: int = 16):
        super().__init__()
        self.patch_size = patch
        self.embed = nn.Conv2d(3, dim, patch, patch)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        self.pos = nn.Parameter(torch.randn(1, dim, img_size // patch, img_size // patch) * 0.02)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, 2, 2 * dim, dropout=0.0, batch_first=True, norm_first=True) for _ in range(depth)
        )
        self.feature_info = FeatureInfo([{"num_chs": dim, "reduction": patch, "module": f"blocks.{i}"} for i in range(depth)])
        self.last_mask = None
        self.last_input = None

    def forward(self, x, mask=None):
        self.last_mask, self.last_input = mask, x.detach()
        t = self.embed(x)
        if mask is not None:
            t = torch.where(mask.unsqueeze(1), self.mask_token.view(1, -1, 1, 1).to(t.dtype), t)
        t = t + self.pos
        b, c, h, w = t.shape
        seq = t.flatten(2).transpose(1, 2)
        feats = []
        for blk in self.blocks:
            seq = blk(seq)
            feats.append(seq.transpose(1, 2).reshape(b, c, h, w))
        return feats


class Recorder(nn.Module):
    """Wraps a backbone and keeps its feature maps (with retained grads) from the last forward.

    With ``cut=True`` each map is a fresh leaf, so its ``.grad`` holds only what the objective's head
    sends to that stage (not what flows back from later stages through the backbone).
    """

    def __init__(self, inner: nn.Module, cut: bool = False):
        super().__init__()
        self.inner = inner
        self.cut = cut
        self.feature_info = inner.feature_info
        self.feats: list[torch.Tensor] = []

    def forward(self, x):
        feats = self.inner(x)
        if self.cut:
            feats = [f.detach().requires_grad_() for f in feats]
        for f in feats:
            if f.requires_grad:
                f.retain_grad()
        self.feats = feats
        return feats


def train(objective, backbone, batches, steps: int, lr: float = 3e-3, targets=None):
    """Adam on backbone + heads for ``steps`` steps cycling over ``batches``; returns the losses."""
    params = list(backbone.parameters()) + [p for p in objective.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    losses = []
    backbone.train()
    objective.train()
    for step in range(steps):
        i = step % len(batches)
        t = None if targets is None else targets[i]
        loss = objective.loss(backbone, batches[i], t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def registered_names() -> list[str]:
    """The objective names this package registers (parametrizes the contract tests, timm-style)."""
    import nas_objectives.plugin

    pm = NasPluginManager(autoload=False)
    pm.register_plugin(nas_objectives.plugin, "objectives")
    return pm.registry("objective").names()
