"""Throughput of one training step of every nas-objectives objective on an NB201-sized backbone, and
its cost relative to plain supervised cross-entropy on the same backbone, measured in the same run.

The backbone is the NAS-Bench-201 network (C=16, N=5: three stages of 16/32/64 channels at reductions
1/2/4, five cells each, residual reduction blocks) with one fixed cell - built here so the benchmark
needs only nas-core and nas-objectives. ``--backbone nb201`` uses nas-spaces' nb201 through the
registry instead, when it is installed.

One step = objective.loss(backbone, images) + backward + SGD step over backbone and heads (the
reference: backbone -> global pool -> linear -> cross_entropy, written out plainly). Objectives are
timed round-robin, several rounds, and the median per objective is reported, so background load
hits every objective alike. Images/s counts input images (rotation trains on 4 rotations of each,
jigsaw on 4 tiles).

    python bench/bench_objectives.py            # batch 64 at 32x32 on CPU
    python bench/bench_objectives.py --quick    # smoke run
    python bench/bench_objectives.py --device cuda --precision bf16
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from nas_core import FeatureInfo, create_objective, forward_features

# the best NB201 cell on CIFAR-10 (5 conv3x3 + 1 skip): edges 1<-0 | 2<-0, 2<-1 | 3<-0, 3<-1, 3<-2
DEFAULT_CELL = ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_3x3")


class ReLUConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1):
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout))


def _op(name: str, c: int) -> nn.Module | None:
    if name == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3)
    if name == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity()
    if name == "none":
        return None
    raise ValueError(f"unknown NB201 op {name}")


class Cell(nn.Module):
    def __init__(self, c: int, ops: tuple[str, ...]):
        super().__init__()
        self.edges = nn.ModuleList()
        self.kinds = []
        for name in ops:
            m = _op(name, c)
            self.kinds.append(m is not None)
            self.edges.append(m if m is not None else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        e = 0
        for j in range(1, 4):
            acc = 0
            for i in range(j):
                if self.kinds[e]:
                    acc = acc + self.edges[e](nodes[i])
                e += 1
            nodes.append(acc if isinstance(acc, torch.Tensor) else torch.zeros_like(x))
        return nodes[-1]


class ResBlock(nn.Module):
    """NB201's reduction block: a stride-2 basic residual block doubling the channels."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.a = ReLUConvBN(cin, cout, 3, 2)
        self.b = ReLUConvBN(cout, cout, 3, 1)
        self.short = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x)) + self.short(x)


class NB201Like(nn.Module):
    """The NB201 macro skeleton (C=16, N=5) with one cell everywhere; multi-scale features per stage."""

    def __init__(self, c: int = 16, n: int = 5, cell: tuple[str, ...] = DEFAULT_CELL):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))
        widths = [c, 2 * c, 4 * c]
        self.stages = nn.ModuleList()
        for s, w in enumerate(widths):
            layers: list[nn.Module] = [] if s == 0 else [ResBlock(widths[s - 1], w)]
            layers += [Cell(w, cell) for _ in range(n)]
            self.stages.append(nn.Sequential(*layers))
        self.out = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU())
        self.feature_info = FeatureInfo(
            [{"num_chs": w, "reduction": 2**s, "module": f"stages.{s}"} for s, w in enumerate(widths)]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            feats.append(self.out(x) if i == len(self.stages) - 1 else x)
        return feats


def build_backbone(kind: str, width: int = 16) -> nn.Module:
    if kind == "builtin":
        return NB201Like(c=width)
    from nas_core import create_space

    space = create_space("nb201")
    arch = space.parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    return space.build(arch, num_classes=None)


class Reference(nn.Module):
    """Plain supervised cross-entropy: global average pool of the last stage, linear classifier."""

    def __init__(self, feature_info: FeatureInfo, num_classes: int = 10):
        super().__init__()
        self.fc = nn.Linear(feature_info.channels()[-1], num_classes)

    def loss(self, backbone: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        feat = forward_features(backbone, images)[-1]
        return F.cross_entropy(self.fc(feat.mean(dim=(2, 3))), targets)


def make_cases(feature_info: FeatureInfo, img_size: int, device: torch.device, teacher: nn.Module) -> dict[str, Any]:
    cases: dict[str, Any] = {"reference: plain cross-entropy": Reference(feature_info)}
    specs: list[tuple[str, str, dict[str, Any]]] = [
        ("supervised", "supervised", {}),
        ("mim (hierarchical)", "mim", {"decoder": "hierarchical"}),
        ("mim (simple)", "mim", {"decoder": "simple"}),
        ("mim (transformer)", "mim", {"decoder": "transformer"}),
        ("rotation", "rotation", {}),
        ("colorization", "colorization", {}),
        ("jigsaw", "jigsaw", {}),
        ("distill", "distill", {"teacher": teacher}),
        ("random_labels", "random_labels", {}),
    ]
    for label, name, cfg in specs:
        obj = create_objective(name, **cfg)
        obj.setup(feature_info, in_chans=3, img_size=img_size)
        cases[label] = obj
    for obj in cases.values():
        obj.to(device)
    return cases


def timed_step(
    backbone: nn.Module, obj: Any, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer, ctx: Callable[[], Any], device: torch.device
) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    with ctx():
        loss = obj.loss(backbone, x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--img-size", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--backbone", choices=["builtin", "nb201"], default="builtin")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per objective per round")
    ap.add_argument("--rounds", type=int, default=4, help="round-robin rounds (median over all timed steps)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 round of 1 step after 1 warm-up step")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.rounds, args.warmup = 1, 1, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)

    backbone = build_backbone(args.backbone).to(device)
    fi = FeatureInfo.coerce(backbone.feature_info)
    teacher = NB201Like(c=32).to(device)  # a frozen, twice-wider teacher for distill
    cases = make_cases(fi, args.img_size, device, teacher)
    x = torch.rand(args.batch, 3, args.img_size, args.img_size, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)

    def ctx() -> Any:
        if args.precision == "bf16":
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        return torch.autocast(device_type=device.type, enabled=False)

    opts = {}
    for label, obj in cases.items():
        params = list(backbone.parameters()) + [p for p in obj.parameters() if p.requires_grad]
        opts[label] = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    backbone.train()
    for obj in cases.values():
        obj.train()
    for label, obj in cases.items():
        for _ in range(args.warmup):
            timed_step(backbone, obj, x, y, opts[label], ctx, device)
    times: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(args.rounds):
        for label, obj in cases.items():
            for _ in range(args.steps):
                times[label].append(timed_step(backbone, obj, x, y, opts[label], ctx, device))

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    ref = statistics.median(times["reference: plain cross-entropy"])
    print(
        f"\nnas-objectives training-step benchmark: {args.backbone} backbone (C=16, N=5, "
        f"{sum(p.numel() for p in backbone.parameters()) / 1e6:.2f}M params), batch {args.batch} at "
        f"{args.img_size}x{args.img_size}, {device.type} {args.precision}, {torch.get_num_threads()} threads, "
        f"{args.rounds} rounds x {args.steps} steps, load average {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f} on "
        f"{os.cpu_count()} cpus\n"
    )
    print(f"{'objective':34s} {'ms/step':>9s} {'images/s':>10s} {'x plain CE':>11s}")
    for label, ts in times.items():
        med = statistics.median(ts)
        print(f"{label:34s} {1e3 * med:9.1f} {args.batch / med:10.0f} {med / ref:11.2f}")
    mim = statistics.median(times["mim (hierarchical)"]) / ref
    verdict = "meets" if mim <= 1.3 else "MISSES"
    print(f"\nmim with the hierarchical decoder costs {mim:.2f}x the supervised step ({verdict} the <= 1.3x target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
