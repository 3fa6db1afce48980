"""The ``nas`` command line. Subcommands come from the command registry (plugins add theirs);
a subcommand's module is imported only when it runs, so ``nas --help`` stays fast."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Iterator, Sequence

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
    from ._errors import NasError, Terminated
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
            command = entry.load()
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
    prefix = f"nas {args.command}"
    try:
        with _sigterm_as_interrupt():
            return int(args._command.run(args) or 0)
    except NasError as exc:
        print(f"{prefix}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `nas plugins --names | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 0
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        hint = getattr(args._command, "resume_hint", None)
        tail = hint(args) if hint is not None else ""
        print(f"{prefix}: interrupted by {'SIGTERM' if terminated else 'Ctrl-C (SIGINT)'}. {tail}".rstrip(), file=sys.stderr)
        return 143 if terminated else 130
    except OSError as exc:  # a path the user gave: permissions, a full disk, a missing mount
        where = f" '{exc.filename}'" if exc.filename else ""
        print(f"{prefix}: error: {exc.strerror or exc}{where}; check the path and its permissions", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a bug, not bad input: one line, and the traceback on request
        if os.environ.get("NAS_TRACEBACK"):
            raise
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        at = f" (at {Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno})" if tb is not None else ""
        print(f"{prefix}: internal error: {type(exc).__name__}: {exc}{at}. This is a bug, not your input: please "
              f"report it with the command line; NAS_TRACEBACK=1 shows the traceback", file=sys.stderr)
        return 1


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler's or torchrun's stop) ends the command as Ctrl-C does: the run's failure hooks fire, the
    last checkpoint stays whole, and the CLI says how to resume."""
    from ._errors import Terminated

    def stop(signum: int, frame: object) -> None:
        raise Terminated(f"stopped by {signal.Signals(signum).name}")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # python -m nas_core.cli (torchrun -m nas_core.cli ...)
    raise SystemExit(main())
