"""``nas train RUN_DIR|ARCH``: the evaluation phase - train the found architecture with labels and report
accuracy, params and FLOPs (or fine-tune a subnet that inherits the supernet's weights with --inherit)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .._errors import ConfigError
from ._common import add_runtime_arguments, fmt_count, read_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="a run directory (uses its best architecture) or an architecture string")
    parser.add_argument("--space", help="space name when TARGET is an architecture string (default: from the run)")
    parser.add_argument("--space-option", action="append", metavar="KEY=VALUE", default=[], help="space option, e.g. channels=36")
    parser.add_argument("--data", default="digits", help="labelled data: digits (default), an ImageFolder root, cifar10, ...")
    parser.add_argument("--img-size", type=int, default=None, help="image size (default: the run's, else 32)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--weight-decay", type=float, default=3e-4)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--inherit", action="store_true", help="fine-tune the subnet extracted from the run's supernet checkpoint")
    parser.add_argument("--out", help="output directory (default RUN_DIR/train, or runs/train-<time>)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted training in --out")
    add_runtime_arguments(parser)


def _space_and_arch(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any], Path | None]:
    from .._factory import create_space
    from .._config import parse_value

    target = Path(args.target)
    opts = {}
    for item in args.space_option:
        k, _, v = item.partition("=")
        opts[k] = parse_value(v)
    if target.is_dir():
        res_path = target / "result.json"
        if not res_path.exists():
            raise ConfigError(f"'{target}' has no result.json: the search did not finish (resume it with nas search --resume)")
        res = read_json(res_path)
        space = create_space(args.space or res["space"], **{**(res.get("space_config") or {}), **opts})
        cfg = read_json(target / "config.json") if (target / "config.json").exists() else {}
        return space, space.parse(res["best"]), cfg, target
    if not args.space:
        raise ConfigError("an architecture string needs --space (e.g. --space nb201)")
    space = create_space(args.space, **opts)
    return space, space.parse(args.target), {}, None


def run(args: argparse.Namespace) -> int:
    import torch

    from .._context import RunContext
    from .._data import load_data
    from .._runtime import load_checkpoint
    from .._train import train_architecture

    space, arch, run_cfg, run_dir = _space_and_arch(args)
    img_size = args.img_size or int((run_cfg.get("run") or {}).get("img_size") or getattr(space, "img_size", None) or 32)
    data = load_data(args.data, img_size=img_size, labels=True, limit=args.limit)
    out = Path(args.out) if args.out else (run_dir / "train" if run_dir else Path("runs") / f"train-{time.strftime('%Y%m%d-%H%M%S')}")
    ctx = RunContext(
        device=args.device or "auto", precision=args.precision or "fp32", seed=args.seed or 0, run_dir=out,
        resume=args.resume, progress="lines" if args.no_progress else None, threads=args.threads or "auto",
        config={"arch": str(arch), "space": space.config(), "data": str(args.data), "epochs": args.epochs,
                "batch_size": args.batch_size, "lr": args.lr, "inherit": args.inherit, "img_size": img_size},
    )
    num_classes = data.num_classes or 10
    if args.inherit:
        if run_dir is None or not (run_dir / "checkpoint.pt").exists():
            raise ConfigError("--inherit needs a run directory whose checkpoint.pt holds the trained supernet")
        state = load_checkpoint(run_dir / "checkpoint.pt")
        # strategies keep the supernet at the top of the checkpoint or inside their trainer's state
        sn_state = state.get("supernet")
        if sn_state is None:
            sn_state = next((v["supernet"] for v in state.values() if isinstance(v, dict) and "supernet" in v), None)
        if sn_state is None:
            raise ConfigError(f"{run_dir}/checkpoint.pt has no 'supernet' state to inherit from (this strategy does not keep one)")
        # the supernet as the search built it (strategies may pass their own supernet options)
        supernet = space.supernet(**((run_cfg.get("strategy") or {}).get("supernet") or {}))
        if not hasattr(supernet, "extract"):
            raise ConfigError(f"space '{space.registered_name or space.name}' cannot extract a subnet from its supernet; train from scratch (drop --inherit)")
        try:
            supernet.load_state_dict(sn_state)
        except RuntimeError as exc:
            raise ConfigError(
                f"{run_dir}/checkpoint.pt holds a supernet of another shape than space '{space.registered_name or space.name}' "
                f"with these options builds ({str(exc).splitlines()[0]}); drop --space-option, or train from scratch without --inherit"
            ) from exc
        model = supernet.extract(arch, num_classes=num_classes)
    else:
        torch.manual_seed(ctx.seed)
        model = space.build(arch, num_classes=num_classes)
    cost = space.cost(arch)
    t0 = time.perf_counter()
    res = train_architecture(model, data, ctx, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             weight_decay=args.weight_decay, val_fraction=args.val_fraction)
    summary = {
        "arch": str(arch), "space": space.registered_name or space.name, "data": str(args.data), "num_classes": num_classes,
        "epochs": args.epochs, "val_acc": res["val_acc"], "best_val_acc": res["best_val_acc"], "val_loss": res["val_loss"],
        "params": cost.params, "flops": cost.flops, "seconds": time.perf_counter() - t0, "inherit": args.inherit,
        "history": res["history"],
    }
    if ctx.is_main:
        from .._io import atomic_write_text

        atomic_write_text(out / "train.json", json.dumps(summary, indent=2) + "\n")
        from .._plots import draw_history

        draw_history(res["history"], out / "training.png",
                     title=f"nas train: the {summary['space']} architecture on {args.data} with labels, {args.epochs} epochs")
        print(f"\nnas train: {summary['arch']}")
        print(f"  validation accuracy {res['val_acc']:.2f}% (best {res['best_val_acc']:.2f}%) after {args.epochs} epochs on {args.data}")
        print(f"  params {fmt_count(cost.params)}, FLOPs {fmt_count(cost.flops)}; {summary['seconds']:.1f} s; results in {out}")
    return 0


COMMAND = SimpleNamespace(add_arguments=add_arguments, run=run)
