"""A real engine holding builds in every state, shared by the skill tests of a session."""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.helpers import EngineProcess, edit_config, marked_processes

CRASH = 'raise ValueError("learning rate must be positive, got -0.1")\n'
SLOW = "import time\nprint('epoch 1', flush=True)\ntime.sleep(600)\n"


@pytest.fixture(scope="session")
def populated(sample_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    """Builds 1 SUCCEEDED (live), 2 FAILED at Train, 3 GATE_FAILED, 4 ABORTED, 5 RUNNING (training)."""
    project = tmp_path_factory.mktemp("populated") / "wine"
    shutil.copytree(sample_template, project)
    (project / "model" / "crash.py").write_text(CRASH)
    (project / "model" / "slow.py").write_text(SLOW)
    engine = EngineProcess(project).start()
    try:
        assert engine.wait_build(engine.start_build("first model")["number"])["status"] == "SUCCEEDED"
        edit_config(project, training={"entry_point": "crash.py"})
        assert engine.wait_build(engine.start_build("bad learning rate")["number"])["status"] == "FAILED"
        edit_config(project, training={"entry_point": "train.py"})
        weak = engine.start_build("tiny forest", **{"n-estimators": 1, "max-depth": 1})
        assert engine.wait_build(weak["number"])["status"] == "GATE_FAILED"
        edit_config(project, training={"entry_point": "slow.py"})
        doomed = engine.start_build("to be stopped")["number"]
        engine.wait_build(doomed, step="Train")
        engine.api("POST", f"/v1/builds/{doomed}/stop", {})
        running = engine.start_build("long training")["number"]
        engine.wait_build(running, step="Train")
        yield engine
    finally:
        engine.stop()


@pytest.fixture
def empty_engine(project: Path) -> Iterator[EngineProcess]:
    """An engine with no builds at all; its training is slow so started builds stay running."""
    (project / "model" / "slow.py").write_text(SLOW)
    edit_config(project, training={"entry_point": "slow.py"})
    engine = EngineProcess(project).start()
    try:
        yield engine
    finally:
        engine.stop()
        deadline = time.monotonic() + 10
        while marked_processes(project) and time.monotonic() < deadline:
            time.sleep(0.1)
