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
from ._common import (
    add_data_arguments,
    add_runtime_arguments,
    create_space_checked,
    fmt_count,
    load_run_config,
    load_run_result,
    parse_sets,
)


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
    parser.add_argument("--check", action="store_true",
                        help="check the target, options, output directory and data, and exit without training")
    add_data_arguments(parser)
    add_runtime_arguments(parser)


def _space_and_arch(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any], Path | None]:
    opts = dict(parse_sets(args.space_option, flag="--space-option"))
    from .._io import is_directory

    target = Path(args.target)
    if is_directory(target):
        res = load_run_result(target)
        space = create_space_checked(args.space or res["space"], {**(res.get("space_config") or {}), **opts},
                                     f" (from {target / 'result.json'})")
        return space, space.parse(res["best"]), load_run_config(target), target
    if not args.space:
        raise ConfigError(f"'{args.target}' is not a run directory; an architecture string needs --space "
                          f"(e.g. --space nb201)")
    space = create_space_checked(args.space, opts)
    return space, space.parse(args.target), {}, None


def _check_arguments(args: argparse.Namespace) -> None:
    """Every numeric option against its declared type and range, before anything is loaded."""
    from .._options import Range, check_options, check_value
    from .._runtime import select_device
    from .._train import train_architecture

    check_options("", train_architecture, {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                                                    "weight_decay": args.weight_decay, "val_fraction": args.val_fraction})
    check_value("", "img_size", args.img_size, int, Range(ge=8))
    check_value("", "limit", args.limit, int, Range(ge=1))
    if args.device not in (None, "auto"):
        select_device(args.device)


def run(args: argparse.Namespace) -> int:
    from .._context import RunContext
    from .._data import load_data
    from .._rundir import check_run_dir

    _check_arguments(args)
    space, arch, run_cfg, run_dir = _space_and_arch(args)
    img_size = args.img_size or int((run_cfg.get("run") or {}).get("img_size") or getattr(space, "img_size", None) or 32)
    out = Path(args.out) if args.out else (run_dir / "train" if run_dir else Path("runs") / f"train-{time.strftime('%Y%m%d-%H%M%S')}")
    args._out = out
    check_run_dir(out, resume=args.resume, what="output directory")
    if args.inherit and (run_dir is None or not (run_dir / "checkpoint.pt").exists()):
        raise ConfigError("--inherit needs a run directory whose checkpoint.pt holds the trained supernet")
    data = load_data(args.data, img_size=img_size, labels=True, limit=args.limit, skip_corrupt=args.skip_corrupt,
                     download=args.download)
    if args.check:
        print(f"nas train: the configuration is valid: {space.registered_name or space.name} architecture {arch}; "
              f"data {data.describe()}; output directory {out}. Nothing was trained (drop --check to train).")
        return 0
    ctx = RunContext(
        device=args.device or "auto", precision=args.precision or "fp32", seed=args.seed or 0, run_dir=out,
        resume=args.resume, progress="lines" if args.no_progress else None, threads=args.threads or "auto",
        config={"arch": str(arch), "space": space.config(), "data": str(args.data), "epochs": args.epochs,
                "batch_size": args.batch_size, "lr": args.lr, "inherit": args.inherit, "img_size": img_size},
    )
    ctx._hold_lock = True  # until train.json and the picture are written
    with ctx:
        return _train(args, ctx, space, arch, run_cfg, run_dir, data, out)


def resume_hint(args: argparse.Namespace) -> str:
    """How to continue after an interruption (printed by the CLI on Ctrl-C or SIGTERM)."""
    out = getattr(args, "_out", None)
    if out is None:
        return ""
    if (Path(out) / "checkpoint.pt").exists():
        return (f"The last checkpoint is kept in {out}; continue with the same command plus --resume"
                f"{'' if args.out else f' --out {out}'}")
    return f"No checkpoint was saved yet in {out}: nothing to resume; delete it and start again."


def _train(args: argparse.Namespace, ctx: Any, space: Any, arch: Any, run_cfg: dict[str, Any], run_dir: Path | None,
           data: Any, out: Path) -> int:
    import torch

    from .._runtime import load_checkpoint
    from .._train import train_architecture

    num_classes = data.num_classes or 10
    if args.inherit:
        assert run_dir is not None
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


COMMAND = SimpleNamespace(add_arguments=add_arguments, run=run, resume_hint=resume_hint)
