"""The ``nas`` command line. Subcommands come from the command registry (plugins add theirs);
a subcommand's module is imported only when it runs, so ``nas --help`` stays fast."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Sequence

from .__about__ import __version__


def _build_parser(pm: object) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction, dict]:
    parser = argparse.ArgumentParser(
        prog="nas",
        description="Label-free neural architecture search: compose spaces, objectives, strategies and proxies.",
    )
    parser.add_argument("--version", action="version", version=f"nas-core {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    entries = {e.name: e for e in pm.registry("command")}  # type: ignore[attr-defined]
    return parser, sub, entries


def _one_line_warnings() -> None:
    """nas's own warnings (their text starts with "nas") print as one line, without file, line and source."""
    default = warnings.formatwarning

    def fmt(message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None) -> str:
        text = str(message)
        return f"{text}\n" if text.startswith("nas") else default(message, category, filename, lineno, line)

    warnings.formatwarning = fmt  # type: ignore[assignment]


def main(argv: Sequence[str] | None = None) -> int:
    from ._errors import NasError
    from ._install import missing_command
    from ._plugins import get_plugin_manager

    argv = list(sys.argv[1:] if argv is None else argv)
    _one_line_warnings()
    pm = get_plugin_manager()
    parser, sub, entries = _build_parser(pm)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, entry in entries.items():
        p = sub.add_parser(name, help=entry.summary, description=entry.summary)
        if name == chosen:
            command = _load_command(entry) if isinstance(entry.factory, str) else entry.factory
            command.add_arguments(p)
            p.set_defaults(_command=command)
    if chosen is not None and chosen not in entries:
        missing = missing_command(chosen)
        if missing:
            print(f"nas: error: {missing}", file=sys.stderr)
            return 2
    args = parser.parse_args(argv)
    if getattr(args, "_command", None) is None:
        parser.print_help()
        return 0 if not argv else 2
    try:
        return int(args._command.run(args) or 0)
    except NasError as exc:
        print(f"nas {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nas {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nas plugins --names | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 0


def _load_command(entry: object) -> object:
    import importlib

    module_name, _, attr = entry.factory.partition(":")  # type: ignore[attr-defined]
    obj: object = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


if __name__ == "__main__":  # python -m nas_core.cli (torchrun -m nas_core.cli ...)
    raise SystemExit(main())
