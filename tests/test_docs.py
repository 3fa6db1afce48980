"""Docs cannot drift: every hook is documented with its exact signature, and every registered name has a row
in the README of the package that registers it."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import nas_core
from nas_core import hookspecs

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("nas_"))


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_with_its_signature(hook):
    params = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert f"`{hook}({params})`" in (ROOT / "docs" / "plugins.md").read_text()


def _registered():
    pm = nas_core.get_plugin_manager()
    for kind in ("space", "objective", "strategy", "proxy"):
        for entry in pm.registry(kind):
            if entry.origin.dist:
                yield kind, entry


@pytest.mark.parametrize("kind, entry", list(_registered()), ids=lambda x: getattr(x, "name", x))
def test_registered_name_has_a_readme_row(kind, entry):
    dist = entry.origin.dist
    folder = ROOT / "packages" / dist if (ROOT / "packages" / dist).exists() else ROOT / "examples" / dist
    readme = (folder / "README.md").read_text()
    assert f"| `{entry.name}` |" in readme, f"{kind} '{entry.name}' has no row in {folder / 'README.md'}"
