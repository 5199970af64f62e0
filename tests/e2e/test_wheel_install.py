"""The built wheel, installed into a fresh venv outside the checkout, runs the README's first steps.

The wheel is built from a copy of the checkout's files (what a clone has) with this environment's
setuptools (pinned in the dev extras; no build isolation, so no download). The fresh venv gets the
wheel alone (``--no-deps``); its third-party libraries come from this environment's site-packages
through a ``.pth`` line, which adds that one folder and nothing of the checkout (the editable
install's finder there is a ``.pth`` of that folder, and ``.pth`` files of a folder added this way are
not run). Commands run in ``tmp_path`` without ``PYTHONPATH``; the test checks that every SageBuild
package is imported from the venv.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.e2e

PACKAGES = ("sagebuild", "lambda_pipeline", "infrastructure", "skill", "examples", "interaction_model")


def _source_files() -> list[str]:
    """The checkout's files as a clone has them (tracked, plus new files not ignored)."""
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, text=True, check=True)
    return [name for name in out.stdout.splitlines() if (REPO / name).is_file()]


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A venv in a temporary folder with the wheel installed; returns its bin folder and the env to run it."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    for name in _source_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "SAGEBUILD"))}
    env["SAGEBUILD_ENV_DIR"] = str(root / "envs")  # project environments: not the user's cache
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(root / "dist"), str(source)], root, env)
    wheel, = (root / "dist").glob("sagebuild-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root, env)
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     root, env).stdout.strip())
    (site / "sagebuild-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], root, env)
    return venv / "bin", env


def test_the_wheel_ships_its_package_data(installed, tmp_path):
    bin_dir, env = installed
    probe = ("import importlib, json, sys; mods = {n: importlib.import_module(n).__file__ for n in %r}; "
             "print(json.dumps({'modules': mods, 'path': sys.path}))" % (PACKAGES,))
    seen = json.loads(_run([str(bin_dir / "python"), "-c", probe], tmp_path, env).stdout)
    venv = bin_dir.parent.resolve()
    for name, where in seen["modules"].items():
        assert Path(where).resolve().is_relative_to(venv), f"{name} imported from {where}, not the venv"
    deps = Path(sysconfig.get_paths()["purelib"]).resolve()  # the third-party libraries (a venv may sit in the checkout)
    assert not any(p and Path(p).resolve().is_relative_to(REPO) and Path(p).resolve() != deps
                   for p in seen["path"]), seen["path"]
    files = _run([str(bin_dir / "python"), "-c",
                  "from importlib.resources import files; import interaction_model; "
                  "print(interaction_model.model_locales()); "
                  "print(sorted(p.name for p in (files('examples') / 'notebooks').iterdir()))"], tmp_path, env)
    assert files.stdout.splitlines() == ["['en-US', 'fr-FR', 'ja-JP']", "['quickstart.ipynb']"]


def test_init_demo_and_say_run_from_the_wheel(installed, tmp_path):
    bin_dir, env = installed
    sagebuild = str(bin_dir / "sagebuild")
    env = dict(env, PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
    init = _run([sagebuild, "init", "my-wine", "--example", "wine"], tmp_path, env)
    assert "Created the wine example in" in init.stdout
    assert (tmp_path / "my-wine/model/train.py").is_file() and (tmp_path / "my-wine/sagebuild.json").is_file()
    assert len((tmp_path / "my-wine/data/validation/validation.csv").read_text().splitlines()) == 54

    demo = _run([sagebuild, "demo"], tmp_path, env, timeout=180)
    assert "Build #1 SUCCEEDED: version v1, validation:accuracy" in demo.stdout, demo.stdout
    assert '-> {"predictions": [{"label": "class_' in demo.stdout, demo.stdout
    assert "Demo done in" in demo.stdout

    say = _run([sagebuild, "say", "is my build done"], tmp_path / "sagebuild-demo", env)
    assert say.stdout.splitlines()[0] == "[BuildStatusIntent]", say.stdout
    assert say.stdout.splitlines()[1].startswith("Alexa: Build 1 passed"), say.stdout
    assert "version 1 with validation accuracy" in say.stdout
