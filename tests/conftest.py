"""Fixtures shared by the suites: a prepared copy of the sample project, the engine process."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from tests.helpers import REPO, EngineProcess

# Engines the tests start register in a registry of their own, not the user's (subprocesses inherit it).
os.environ["SAGEBUILD_HOME"] = tempfile.mkdtemp(prefix="sagebuild-home-")
# Project environments (framework + requirements.txt) are cached in one folder for the whole session, so
# every test after the first reuses them; never the user's cache.
os.environ["SAGEBUILD_ENV_DIR"] = tempfile.mkdtemp(prefix="sagebuild-envs-")


@pytest.fixture(scope="session")
def sample_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wine sample with its data prepared once per session."""
    root = tmp_path_factory.mktemp("sample") / "wine"
    shutil.copytree(REPO / "examples" / "wine", root, ignore=shutil.ignore_patterns("data", "__pycache__", ".sagebuild"))
    subprocess.run([sys.executable, str(root / "prepare_data.py"), "--out", str(root / "data")], check=True,
                   capture_output=True)
    return root


@pytest.fixture
def project(sample_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the prepared sample project for one test."""
    dest = tmp_path / "wine"
    shutil.copytree(sample_template, dest)
    return dest


@pytest.fixture
def engine(project: Path) -> Iterator[EngineProcess]:
    """``sagebuild up`` running for the test's project; stopped by PID afterwards."""
    proc = EngineProcess(project).start()
    try:
        yield proc
    finally:
        proc.stop()
