"""What the command line prints: no traceback when its reader goes away, install hints that work where nas-core
came from, a named distribution for a missing command, and --threads values."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from nas_core._install import install_hint
from nas_core.commands._common import threads_arg


def test_a_closed_pipe_ends_quietly():
    """`nas plugins --names | head`: the reader closes the pipe before the listing is written."""
    read, write = os.pipe()
    os.close(read)  # a reader that is already gone: the first write fails with EPIPE
    try:
        r = subprocess.run([sys.executable, "-m", "nas_core.cli", "plugins", "--names"], stdout=write,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert "Traceback" not in r.stderr and "BrokenPipeError" not in r.stderr, r.stderr
    assert r.returncode == 0


def test_install_hints_follow_how_nas_core_was_installed(tmp_path):
    checkout = tmp_path / "repo" / "packages"
    for name in ("nas-core", "nas-spaces"):
        (checkout / name).mkdir(parents=True)
        (checkout / name / "pyproject.toml").write_text("")
    core = f"file://{checkout / 'nas-core'}"
    assert install_hint("nas-spaces", origin={"url": core, "dir_info": {"editable": True}}) == \
        f"pip install -e {checkout / 'nas-spaces'}"
    assert install_hint("nas-spaces", origin={"url": core, "dir_info": {}}) == f"pip install {checkout / 'nas-spaces'}"
    # a sibling the checkout does not have: the index name
    assert install_hint("nas-thing", origin={"url": core, "dir_info": {}}) == "pip install nas-thing"

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "nas_core-0.1.0-py3-none-any.whl").write_text("")
    (wheels / "nas_spaces-0.1.0-py3-none-any.whl").write_text("")
    wheel = {"url": f"file://{wheels / 'nas_core-0.1.0-py3-none-any.whl'}", "archive_info": {}}
    assert install_hint("nas-spaces", origin=wheel) == f"pip install --find-links {wheels} nas-spaces"
    assert install_hint("nas-proxies", origin=wheel) == "pip install nas-proxies"
    assert install_hint("nas-spaces", origin=None) == "pip install nas-spaces"  # from an index
    assert install_hint("nas-spaces", origin={"url": "https://example.org/nas_core.whl", "archive_info": {}}) == \
        "pip install nas-spaces"


def test_unknown_names_carry_the_install_hint(nas_plugins):
    import nas_core

    with pytest.raises(nas_core.UnknownNameError) as err:
        nas_core.create_space("nb201")
    assert "'nb201' is provided by nas-spaces: pip install" in str(err.value)


@pytest.mark.parametrize("text, value", [("auto", "auto"), ("AUTO", "auto"), ("3", 3)])
def test_threads_argument(text, value):
    assert threads_arg(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "two"])
def test_bad_threads_argument(text):
    with pytest.raises(argparse.ArgumentTypeError, match="positive integer or 'auto'"):
        threads_arg(text)
