"""The packages install the way a user installs them: each builds a wheel and an sdist with complete metadata
(``twine check --strict`` passes), the wheels install offline into a fresh virtual environment (pip, a folder of
wheels, no index; torch and the other third-party dependencies come from the interpreter, not from a download),
``nas search`` runs there, and the plugin sample of docs/plugins.md installs as printed."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists())
PROJECTS = [*PACKAGES, ROOT / "examples" / "nas-plugin-example"]

pytestmark = pytest.mark.slow


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           **kwargs.pop("env", {})}
    env.pop("PIP_FIND_LINKS", None)  # only the folder the test names
    env.pop("PYTHONPATH", None)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, **kwargs)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    return r


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """``hatch build``'s backend on every project: a wheel and an sdist each."""
    out = tmp_path_factory.mktemp("dist")
    for project in PROJECTS:
        _run([sys.executable, "-m", "hatchling", "build", "-d", str(out)], cwd=project)
    return out


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory) -> Path:
    """A fresh venv that sees the interpreter's torch & co. (--system-site-packages) and holds our wheels."""
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", "--without-pip", "--system-site-packages", str(env_dir)])
    py = env_dir / "bin" / "python"
    names = [p.name for p in PACKAGES]
    pip = [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-index", "--find-links", str(dist)]
    # our wheels go into the venv even where the interpreter already holds a (development) copy of them ...
    _run([*pip, "--ignore-installed", "--no-deps", *names])
    # ... and their declared dependencies must be satisfied offline by what the interpreter has
    _run([*pip, *names])
    return env_dir


def test_every_project_builds_a_wheel_and_an_sdist_with_complete_metadata(dist):
    files = sorted(f.name for f in dist.iterdir())
    for project in PROJECTS:
        stem = project.name.replace("-", "_")
        assert any(re.fullmatch(rf"{stem}-[\d.]+-py3-none-any\.whl", f) for f in files), (project.name, files)
        assert any(re.fullmatch(rf"{stem}-[\d.]+\.tar\.gz", f) for f in files), (project.name, files)
    import zipfile

    for wheel in dist.glob("*.whl"):
        with zipfile.ZipFile(wheel) as zf:
            meta = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
            assert any(n.endswith(".dist-info/licenses/LICENSE") for n in zf.namelist()), wheel.name
        for field in ("License-Expression: Apache-2.0", "Project-URL: Repository", "Project-URL: Issues",
                      "Classifier: Programming Language :: Python :: 3", "Requires-Python: >=3.10",
                      "Description-Content-Type: text/markdown"):
            assert field in meta, f"{wheel.name} lacks {field!r}"
        # lower bounds only: no pins, no upper bounds on third-party packages (nas-core's own major is capped)
        for req in re.findall(r"^Requires-Dist: (.+)$", meta, re.M):
            spec = req.split(";")[0]
            name = re.match(r"[A-Za-z0-9_.-]+", spec).group(0)
            assert ">=" in spec and "==" not in spec and ("<" not in spec or name == "nas-core"), f"{wheel.name}: {req}"


def test_twine_check_passes(dist):
    if importlib.util.find_spec("twine") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("twine is missing from the test environment (hatch.toml's test-all installs it)")
        pytest.skip("needs twine (pip install twine)")
    r = _run([sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(dist.iterdir()))])
    assert r.stdout.count("PASSED") == 2 * len(PROJECTS), r.stdout


def test_the_installed_wheels_run_a_search(venv, tmp_path):
    py = venv / "bin" / "python"
    where = _run([str(py), "-c", "import nas_core, nas_spaces; print(nas_core.__file__); print(nas_spaces.__file__)"])
    assert all(line.startswith(str(venv)) for line in where.stdout.split()), where.stdout
    rd = tmp_path / "run"
    r = _run([str(venv / "bin" / "nas"), "search", "--space", "nb201", "--objective", "mim", "--strategy", "darts",
              "--epochs", "1", "--limit", "32", "--img-size", "16", "--set", "space.channels=4",
              "--set", "space.num_cells=1", "--set", "space.img_size=16", "--set", "strategy.batch_size=8", "--set", "strategy.steps_per_epoch=2",
              "--set", "pictures=false", "--run-dir", str(rd), "--no-progress"], cwd=tmp_path)
    assert "nas search finished" in r.stdout
    result = json.loads((rd / "result.json").read_text())
    assert result["space"] == "nb201" and result["best"].startswith("|")
    assert {"nas-core", "nas-spaces", "nas-objectives", "nas-strategies"} <= set(result["versions"])


def _docs_blocks(lang: str) -> list[str]:
    text = (ROOT / "docs" / "plugins.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def test_the_documented_plugin_sample_installs(venv, tmp_path):
    """docs/plugins.md's pyproject and plugin module, copied as printed, install with pip and register."""
    pyproject = next(b for b in _docs_blocks("toml") if "[project.entry-points.nas]" in b)
    plugin = next(b for b in _docs_blocks("python") if b.startswith("# src/nas_thing/plugin.py"))
    project = tmp_path / "nas-thing"
    (project / "src" / "nas_thing").mkdir(parents=True)
    (project / "pyproject.toml").write_text(pyproject)
    (project / "src" / "nas_thing" / "__init__.py").write_text("")
    (project / "src" / "nas_thing" / "plugin.py").write_text(plugin)
    py = venv / "bin" / "python"
    # no index here: the build backend comes from the interpreter (a user's pip fetches it instead)
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-index", "--no-build-isolation", str(project)])
    r = _run([str(venv / "bin" / "nas"), "plugins", "--json"])
    info = {p["name"]: p for p in json.loads(r.stdout)}
    assert info["thing"]["dist"] == "nas-thing" and info["thing"]["status"] == "ok", info.get("thing")
    assert info["thing"]["registered"] == {"space": ["thing"]}
