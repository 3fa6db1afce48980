"""``nas search``: run a label-free search from the command line or a config file."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .._config import SECTIONS, apply_override, load_config, merge_config
from .._errors import ConfigError
from ._common import add_data_arguments, add_runtime_arguments, fmt_count, load_run_config, parse_sets

#: what `nas search` runs with no arguments: a small label-free MIM + DARTS search on the embedded digits,
#: a few minutes on a laptop CPU
QUICKSTART: dict[str, Any] = {
    "run": {"data": "digits", "limit": 1024, "img_size": 32, "seed": 0},
    "space": {"name": "nb201", "channels": 8, "num_cells": 1},
    "objective": {"name": "mim"},
    # a_lr is 10x the paper's 3e-4 so that the architecture weights move visibly within a one-minute run
    "strategy": {"name": "darts", "epochs": 20, "batch_size": 32, "a_lr": 3e-3},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "With no arguments: a quick label-free search (MIM + DARTS on nb201, embedded digits). "
        "Examples: nas search --space darts --objective rotation --strategy darts --epochs 50 --data ./images ; "
        "nas search --config run.toml --set strategy.epochs=3 ; nas search --resume runs/<dir>"
    )
    parser.add_argument("--config", help="TOML/YAML run configuration; command-line options override it")
    parser.add_argument("--space", help=f"search space name ({_installed('space')})")
    parser.add_argument("--objective", help=f"objective name ({_installed('objective')})")
    parser.add_argument("--strategy", help=f"strategy name ({_installed('strategy')})")
    parser.add_argument("--proxy", help=f"zero-cost proxy name, for proxy-driven strategies ({_installed('proxy')})")
    parser.add_argument("--data", help="image folder, embedded dataset (digits, photos) or torchvision name")
    parser.add_argument("--img-size", type=int, help="image size (default 32)")
    parser.add_argument("--limit", type=int, help="use only the first N images")
    parser.add_argument("--epochs", type=int,
                        help="epochs of training on the data: DARTS' search epochs, the supernet training of one-shot "
                             "strategies (evolution, random: their train_epochs); generations are "
                             "--set strategy.generations=N")
    parser.add_argument("--labels", action="store_true", help="load labels (only for the supervised baselines: supervised, random_labels)")
    parser.add_argument("--table", help="benchmark table (JSON) for tabular fitness and the fitness-vs-accuracy plot")
    parser.add_argument("--run-dir", help="run directory (default runs/<time>-<space>-<objective>-<strategy>)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its directory")
    parser.add_argument("--track", action="append", default=[], help="experiment tracker (tensorboard); repeatable")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="any option: strategy.epochs=3, space.channels=8, seed=1")
    parser.add_argument("--check", action="store_true",
                        help="check the configuration (options, components, run directory, data) and exit without searching")
    add_data_arguments(parser)
    add_runtime_arguments(parser)


def _installed(kind: str) -> str:
    """The installed names of ``kind`` for help texts (from the registry, so plugins' names appear)."""
    from .._plugins import get_plugin_manager

    names = [e.name for e in get_plugin_manager().registry(kind)]
    return "installed: " + ", ".join(names) if names else "none installed; see `nas plugins`"


def _cli_config(args: argparse.Namespace) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    for sec in SECTIONS[1:]:
        name = getattr(args, sec)
        if name is not None:
            cfg[sec] = {"name": name}
    for key, attr in (("data", "data"), ("img_size", "img_size"), ("limit", "limit"), ("table", "table"),
                      ("run_dir", "run_dir"), ("seed", "seed"), ("device", "device"), ("precision", "precision"),
                      ("threads", "threads")):
        v = getattr(args, attr)
        if v is not None:
            cfg.setdefault("run", {})[key] = v
    for flag in ("labels", "skip_corrupt", "download"):
        if getattr(args, flag):
            cfg.setdefault("run", {})[flag] = True
    if args.epochs is not None:
        cfg.setdefault("_flat", {})["epochs"] = args.epochs
    if args.track:
        cfg.setdefault("run", {})["trackers"] = list(args.track)
    for k, v in parse_sets(args.set):
        apply_override(cfg, k, v)
    return cfg


def _resume_config(run_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    if not run_dir.is_dir():
        raise ConfigError(f"cannot resume '{run_dir}': {'it is a file, not' if run_dir.exists() else 'no such'} directory")
    if not (run_dir / "config.json").exists():
        raise ConfigError(f"cannot resume '{run_dir}': it has no config.json (is it a run directory?)")
    saved = {k: v for k, v in load_run_config(run_dir).items() if not k.startswith("_")}
    if not all(isinstance(saved.get(sec), dict) and isinstance(saved[sec].get("name"), str) for sec in ("space", "strategy")):
        raise ConfigError(
            f"cannot resume '{run_dir}': its config.json names no space and strategy; it was not written by nas search "
            f"(a nas train output resumes with nas train ... --resume)"
        )
    changed = [a for a in ("config", "space", "objective", "strategy", "proxy", "data", "epochs", "set", "table", "labels",
                           "skip_corrupt", "download") if getattr(args, a)]
    if changed:
        raise ConfigError(
            f"--resume continues the run exactly as configured; drop {', '.join('--' + c for c in changed)} "
            f"(only --device, --threads and --no-progress may change)"
        )
    saved.setdefault("run", {})
    saved["run"].update({"run_dir": str(run_dir), "resume": True})
    if args.device:
        saved["run"]["device"] = args.device
    if args.threads:
        saved["run"]["threads"] = args.threads
    return saved


def build_config(args: argparse.Namespace) -> tuple[dict[str, Any], bool]:
    if args.resume:
        return _resume_config(Path(args.resume), args), False
    cli = _cli_config(args)
    base = load_config(args.config) if args.config else {}
    named = any("name" in (cli.get(k) or {}) for k in SECTIONS[1:])
    quick = not named and not args.config
    cfg = merge_config(QUICKSTART if quick else {}, base)
    cfg = merge_config(cfg, {k: v for k, v in cli.items() if k != "_flat"})
    if "_flat" in cli:
        cfg["_flat"] = cli["_flat"]
    if not quick:
        cfg.setdefault("space", {}).setdefault("name", "nb201")
        cfg.setdefault("strategy", {}).setdefault("name", "darts")
        if "name" not in cfg.get("objective", {}) and not cfg.get("proxy") and not cfg.get("run", {}).get("table"):
            from .._search import default_objective

            objective = default_objective(cfg["strategy"]["name"]) if isinstance(cfg["strategy"]["name"], str) else None
            if objective:  # options given for the objective go to the default one, as for the space and strategy
                cfg.setdefault("objective", {})["name"] = objective
    for sec in SECTIONS[1:]:
        if sec in cfg and "name" not in cfg[sec]:
            raise ConfigError(f"options were given for the {sec} but no {sec} name; add --{sec} NAME")
        if sec in cfg and (not isinstance(cfg[sec]["name"], str) or not cfg[sec]["name"].strip()):
            raise ConfigError(f"{sec}: the name must be a non-empty string (e.g. --{sec} NAME), got {cfg[sec]['name']!r}")
    return cfg, quick


def _default_run_dir(cfg: dict[str, Any]) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    ev = (cfg.get("objective") or cfg.get("proxy") or {"name": "table"})["name"]
    return str(Path("runs") / f"{stamp}-{cfg['space']['name']}-{ev}-{cfg['strategy']['name']}")


def run(args: argparse.Namespace) -> int:
    from .._search import prepare, resolve_config, search

    cfg, quick = build_config(args)
    run_opts = dict(cfg.get("run", {}))
    run_opts.setdefault("run_dir", _default_run_dir(cfg))
    args._run_dir = run_opts["run_dir"]
    if args.no_progress:  # no bars; one line per epoch or generation (as without a terminal)
        run_opts["progress"] = "lines"
    opts = {sec: {k: v for k, v in (cfg.get(sec) or {}).items() if k != "name"} for sec in SECTIONS[1:]}
    names = {sec: (cfg.get(sec) or {}).get("name") for sec in SECTIONS[1:]}
    resolved = resolve_config(
        names["space"], names["objective"], names["strategy"], names["proxy"],
        space_options=opts["space"], objective_options=opts["objective"],
        strategy_options=opts["strategy"], proxy_options=opts["proxy"],
        **run_opts, **cfg.get("_flat", {}),
    )
    if args.check:
        ready = prepare(resolved)
        data = getattr(ready.data, "describe", lambda: "no data")()
        print(f"nas search: the configuration is valid: space {resolved['space']['name']}, strategy "
              f"{resolved['strategy']['name']}, {_evaluator_name(resolved)}; data {data}; run directory "
              f"{resolved['run']['run_dir']}. Nothing was run (drop --check to search).")
        return 0
    if quick:
        print("nas search: no space, objective or strategy given: running the quickstart search (MIM + DARTS on nb201, embedded digits);"
              " see `nas search --help` for options", file=sys.stderr)
    t0 = time.perf_counter()
    result = search(config=resolved)
    if _is_main_process():
        summarize(result, resolved, time.perf_counter() - t0)
    return 0


def _evaluator_name(cfg: dict[str, Any]) -> str:
    parts = [f"{sec} {cfg[sec]['name']}" for sec in ("objective", "proxy") if cfg.get(sec)]
    return " with ".join(parts) or ("table" if cfg["run"].get("table") else "no evaluator")


def resume_hint(args: argparse.Namespace) -> str:
    """How to continue after an interruption (printed by the CLI on Ctrl-C or SIGTERM)."""
    run_dir = getattr(args, "_run_dir", None)
    if not run_dir:
        return ""
    if (Path(run_dir) / "checkpoint.pt").exists():
        return f"The last checkpoint is kept in {run_dir}; continue with: nas search --resume {run_dir}"
    return f"No checkpoint was saved yet in {run_dir}: nothing to resume; delete it and start again."


def _is_main_process() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def summarize(result: Any, cfg: dict[str, Any], seconds: float) -> None:
    run = cfg["run"]
    rd = Path(run["run_dir"]) if run.get("run_dir") else None
    lines = ["", "=" * 72, f"nas search finished in {seconds:.1f} s"]
    ev = cfg.get("objective") or cfg.get("proxy") or {}
    lines.append(f"  space      {cfg['space']['name']}   strategy {cfg['strategy']['name']}   "
                 f"{'objective' if cfg.get('objective') else 'proxy'} {ev.get('name', '-')}")
    lines.append(f"  best       {result.best}")
    if result.cost:
        lines.append(f"  cost       {fmt_count(result.cost.get('params'))} params, {fmt_count(result.cost.get('flops'))} FLOPs")
    if result.candidates:
        top = result.candidates[0]
        shown = ", ".join(f"{k} {v:.4g}" for k, v in list(top.scores.items())[:4] if isinstance(v, (int, float)))
        if shown:
            lines.append(f"  scores     {shown}")
        lines.append(f"  evaluated  {len(result.candidates)} candidate(s)")
    acc = (result.extra or {}).get("table_accuracy")
    if acc is not None:
        lines.append(f"  benchmark  {acc:.2f}% validation accuracy in the table")
    if result.history:
        last = result.history[-1]
        shown = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if isinstance(v, float))[:120]
        lines.append(f"  last epoch {shown}")
    if rd is not None:
        pics = sorted(p.name for p in rd.glob("*.png"))
        lines.append(f"  run dir    {rd}  ({', '.join(pics) or 'no pictures'})")
        lines.append(f"  next       nas train {rd}   |   nas show {rd}")
    lines.append("=" * 72)
    print("\n".join(lines))


COMMAND = SimpleNamespace(add_arguments=add_arguments, run=run, resume_hint=resume_hint)
