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


def test_root_readme_lists_every_first_party_name():
    readme = (ROOT / "README.md").read_text()
    missing = [f"{kind} {entry.name}" for kind, entry in _registered()
               if (ROOT / "packages" / entry.origin.dist).exists() and f"`{entry.name}`" not in readme]
    assert not missing, f"README.md's table of registered names lacks {missing}"


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = "pip install -r requirements-dev.txt && hatch run ci:all"
    assert command in readme, "the README's 'run every test' command changed: update .ci/run and this test"
    assert [line for line in ci.splitlines() if line and not line.startswith(("#", "set ", "cd "))] == [command]


def test_readme_main_job_installs_every_package():
    readme = (ROOT / "README.md").read_text()
    line = next(line for line in readme.splitlines() if line.endswith("&& nas search"))
    for pkg in sorted(p.name for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists()):
        assert f"./packages/{pkg}" in line, f"the main-job command does not install {pkg}"


def _doc_block(start: str) -> str:
    import re

    text = (ROOT / "docs" / "plugins.md").read_text()
    return next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if b.startswith(start))


def test_the_documented_objective_honours_the_contract():
    from nas_core.testing import check_objective

    namespace: dict = {}
    exec(compile(_doc_block("# src/nas_thing/objective.py"), "docs/plugins.md", "exec"), namespace)
    check_objective(lambda: namespace["Denoise"]())
