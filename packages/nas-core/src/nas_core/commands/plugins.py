"""``nas plugins``: every plugin, its distribution and version, what it registered, what failed."""

from __future__ import annotations

import argparse
import json
import sys
from types import SimpleNamespace

from .._plugins import get_plugin_manager
from .._registry import KINDS

PLURAL = {"space": "spaces", "objective": "objectives", "strategy": "strategies", "proxy": "proxies", "command": "commands"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--names", action="store_true", help="also list every registered name with its summary")


def run(args: argparse.Namespace) -> int:
    pm = get_plugin_manager()
    infos = pm.plugins_info()
    if args.json:
        out = []
        for i in infos:
            out.append(
                {
                    "name": i.name,
                    "module": i.module,
                    "dist": i.dist,
                    "version": i.version,
                    "source": i.source,
                    "status": i.status,
                    "error": i.error,
                    "disabled_by": i.disabled_by,
                    "registered": i.registered,
                    "hooks": i.hooks,
                }
            )
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for i in infos:
        dist = f"{i.dist} {i.version}" if i.dist else "(no distribution)"
        status = "FAILED" if i.status == "failed" else i.status
        print(f"{i.name:<14} {dist:<28} {status:<8} {i.module}")
        if i.error:
            print(f"    error: {i.error}")
        if i.disabled_by:
            print(f"    disabled by {i.disabled_by}")
        for kind in KINDS:
            names = i.registered.get(kind)
            if names:
                print(f"    {PLURAL[kind]:<12} {', '.join(names)}")
    if args.names:
        print()
        for kind in KINDS:
            reg = pm.registry(kind)
            if not len(reg):
                continue
            print(f"{PLURAL[kind]}:")
            for e in reg:
                alias = f" (aliases: {', '.join(e.aliases)})" if e.aliases else ""
                print(f"  {e.name:<18} {e.summary}{alias}  [{e.origin.dist or e.origin.plugin}]")
    failed = [i for i in infos if i.error]
    return 1 if failed else 0


COMMAND = SimpleNamespace(add_arguments=add_arguments, run=run)
