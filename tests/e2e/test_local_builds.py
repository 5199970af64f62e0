"""End to end through the real engine (`sagebuild up` as a subprocess), real training and serving."""
import contextlib
import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.helpers import (SAMPLE_ROW, EngineProcess, Load, cli, edit_config, invoke, marked_processes,
                           wait_for_training_processes)

pytestmark = pytest.mark.e2e

CRASH = """
import sys
print("loading data")
raise ValueError("learning rate must be positive, got -0.1")
"""

SLOW = """
import os, signal, subprocess, sys, time
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
print("epoch 1", flush=True)
time.sleep(300)
"""


def live_config(engine):
    return engine.endpoint()["endpoint_config"]


def test_a_build_trains_gates_registers_deploys_and_serves(project, engine):
    started = engine.start_build("first model")
    assert started["status"] == "RUNNING" and started["number"] == 1
    build = engine.wait_build(1)
    assert build["status"] == "SUCCEEDED", build
    assert build["version"] == "v1"
    assert build["metrics"]["validation:accuracy"] > 0.85
    assert [s["name"] for s in build["steps"]] == ["Initialize", "Train", "Evaluate", "Register", "Deploy",
                                                   "VerifyLive", "Notify"]
    assert all(s["status"] == "SUCCEEDED" and s["ended_at"] >= s["started_at"] for s in build["steps"])
    assert build["endpoint_config"].startswith("wine-classifier-v1-")
    endpoint = engine.endpoint()
    assert endpoint["status"] == "InService" and endpoint["model_version"] == "v1"
    status, body = invoke(endpoint["url"])
    assert status == 200 and json.loads(body)["predictions"][0]["label"] == "class_0"
    # the CLI sees the same thing
    out = cli(project, "invoke", "wine-classifier", "--data", SAMPLE_ROW)
    assert out.returncode == 0 and "class_0" in out.stdout
    listed = json.loads(cli(project, "list", "--json").stdout)
    assert [b["number"] for b in listed["builds"]] == [1]
    status_json = json.loads(cli(project, "status", "1", "--json").stdout)
    assert status_json["status"] == "SUCCEEDED"
    assert status_json["config"]["pipeline"] == "wine-classifier"  # the snapshot the build used
    assert status_json["config"]["training"]["hyperparameters"] == {"n-estimators": 100, "max-depth": 6}
    logs = cli(project, "logs", "1")
    assert "validation accuracy:" in logs.stdout
    history = engine.api("GET", "/v1/builds/1/history")["events"]
    assert any(e["type"] == "ExecutionSucceeded" for e in history)


def test_training_script_raises_build_fails_with_its_message_live_model_untouched(project, engine):
    assert engine.wait_build(engine.start_build("good")["number"])["status"] == "SUCCEEDED"
    before = live_config(engine)
    (project / "model" / "crash.py").write_text(CRASH)
    edit_config(project, training={"entry_point": "crash.py"})
    build = engine.wait_build(engine.start_build("crashing script")["number"])
    assert build["status"] == "FAILED"
    assert build["failed_step"] == "Train"
    assert build["failure_reason"] == "ValueError: learning rate must be positive, got -0.1 (exit code 1)"
    assert build["error_type"] == "TrainingFailed"
    assert live_config(engine) == before
    assert invoke(engine.endpoint()["url"])[0] == 200
    shown = cli(project, "status", str(build["number"]))
    assert "failed at Train: ValueError: learning rate must be positive" in shown.stdout
    # the bug fixed, `sagebuild retry` runs the build again from Train: same number, its config snapshot
    (project / "model" / "crash.py").write_text((project / "model" / "train.py").read_text())
    retried = cli(project, "retry", str(build["number"]), "--wait")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert f"Retrying build #{build['number']} from Train (second attempt)" in retried.stdout
    assert f"Build #{build['number']} ({build['id']}) of wine-classifier: SUCCEEDED, second attempt" in retried.stdout
    assert "retried   " in retried.stdout and "from Train (second attempt)" in retried.stdout
    again = engine.build(build["number"])
    assert again["attempt"] == 2 and again["version"] == build["version"] and again["status"] == "SUCCEEDED"
    refused = cli(project, "retry", str(build["number"]))
    assert refused.returncode != 0 and f"build {build['number']} succeeded: only a failed" in refused.stderr


def test_stop_during_training_aborts_kills_the_job_and_keeps_the_endpoint(project, engine):
    assert engine.wait_build(engine.start_build("good")["number"])["status"] == "SUCCEEDED"
    before = live_config(engine)
    (project / "model" / "slow.py").write_text(SLOW)
    edit_config(project, training={"entry_point": "slow.py"})
    number = engine.start_build("slow")["number"]
    engine.wait_build(number, step="Train")
    wait_for_training_processes(project, 2)  # the script and its helper child
    out = cli(project, "stop", str(number))
    assert out.returncode == 0, out.stderr
    assert f"Stopped build #{number}: ABORTED" in out.stdout
    build = engine.build(number)
    assert build["status"] == "ABORTED" and build["failed_step"] == "Train"
    assert marked_processes(project) == []
    assert live_config(engine) == before
    assert invoke(engine.endpoint()["url"])[0] == 200
    again = cli(project, "stop", str(number))
    assert again.returncode == 1 and "already ended" in again.stderr


def test_metric_under_the_gate_is_not_deployed_and_the_reason_states_both_numbers(project, engine):
    assert engine.wait_build(engine.start_build("good")["number"])["status"] == "SUCCEEDED"
    before = live_config(engine)
    build = engine.wait_build(engine.start_build("too shallow", **{"n-estimators": 1, "max-depth": 1})["number"])
    assert build["status"] == "GATE_FAILED"
    assert build["failed_step"] == "Evaluate"
    accuracy = build["metrics"]["validation:accuracy"]
    assert accuracy < 0.85
    assert build["failure_reason"] == f"validation:accuracy {accuracy:.4g} is below the minimum 0.85"
    assert live_config(engine) == before


def test_bad_config_is_refused_before_any_step_naming_the_key(project, engine):
    edit_config(project, training={"max_runtime_seconds": "ten minutes"})
    out = cli(project, "start", "--reason", "bad config")
    assert out.returncode == 2
    assert "'training.max_runtime_seconds' must be an integer" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1  # one clear line, no traceback
    edit_config(project, training={"max_runtime_seconds": 600, "entry_pont": "x.py"})
    out = cli(project, "start")
    assert out.returncode == 2 and "unknown key 'training.entry_pont'" in out.stderr
    assert "did you mean 'training.entry_point'" in out.stderr
    assert engine.api("GET", "/v1/builds")["builds"] == []  # nothing started


def test_second_build_updates_the_endpoint_with_zero_failed_requests(project, engine):
    assert engine.wait_build(engine.start_build("v1")["number"])["status"] == "SUCCEEDED"
    url = engine.endpoint()["url"]
    with Load(url) as load:
        build = engine.wait_build(engine.start_build("v2", **{"n-estimators": 50})["number"])
        time.sleep(0.3)
    assert build["status"] == "SUCCEEDED"
    assert engine.endpoint()["model_version"] == "v2" and engine.endpoint()["url"] == url
    assert len(load.results) > 100
    assert load.failures == []


def test_builds_queue_behind_a_running_one_or_are_refused(project, engine):
    first = engine.start_build("one")
    second = engine.start_build("two")
    assert second["status"] == "QUEUED"
    assert engine.wait_build(first["number"])["status"] == "SUCCEEDED"
    assert engine.wait_build(second["number"])["status"] == "SUCCEEDED"
    edit_config(project, builds={"when_running": "refuse"})
    engine.start_build("three")
    out = cli(project, "start", "--reason", "four")
    assert out.returncode == 1 and "is still running" in out.stderr
    engine.wait_build("latest")


GATED = """
import os, runpy, time
print("epoch 1", flush=True)
while not os.path.exists({flag!r}):
    time.sleep(0.05)
runpy.run_path("train.py", run_name="__main__")
"""


def wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


def _job_log(project: Path, job: str) -> str:
    return (project / ".sagebuild" / "jobs" / job / "job.log").read_text()


def test_engine_killed_mid_training_then_restarted_adopts_the_job_and_the_build_goes_on(project, tmp_path):
    engine = EngineProcess(project).start()
    try:
        assert engine.wait_build(engine.start_build("kept")["number"])["status"] == "SUCCEEDED"
        running_flag, ended_flag = tmp_path / "go-running", tmp_path / "go-ended"
        (project / "model" / "gated.py").write_text(GATED.format(flag=str(running_flag)))
        edit_config(project, training={"entry_point": "gated.py"})
        # 1. the training still runs when the next engine comes: it is adopted, not started again
        number = engine.start_build("cut off while training")["number"]
        before = engine.wait_build(number, step="Train")
        job = wait_for(lambda: engine.build(number)["training_job"])
        wait_for(lambda: "epoch 1" in _job_log(project, job))
        engine.kill()  # SIGKILL: no chance to clean up
        assert marked_processes(project), "the training job died with its engine"
        started = time.monotonic()
        engine = EngineProcess(project).start()
        resumed = wait_for(lambda: (b := engine.build(number))["runs"] and b)
        continued = time.monotonic() - started
        assert resumed["status"] == "RUNNING" and resumed["current_step"] == "Train"
        assert "training job " + job + " kept running while the engine was down" in engine.log.read_text()
        running_flag.write_text("go")
        build = engine.wait_build(number)
        assert build["status"] == "SUCCEEDED", build["failure_reason"]
        assert (build["number"], build["attempt"], build["training_job"]) == (number, 1, job)  # one job
        assert [(r["kind"], r["from"]) for r in build["runs"]] == [("resume", "Train")]
        assert _job_log(project, job).count("epoch 1") == 1  # the script ran once, its log kept growing
        assert next(s for s in build["steps"] if s["name"] == "Initialize") == \
            next(s for s in before["steps"] if s["name"] == "Initialize")  # not run again
        print(f"restart to the build going on: {continued:.2f} s")
        # 2. the training ends while no engine runs: its result is used, nothing is trained again
        (project / "model" / "gated.py").write_text(GATED.format(flag=str(ended_flag)))
        number = engine.start_build("ended while the engine was down")["number"]
        job = wait_for(lambda: engine.build(number)["training_job"])
        wait_for(lambda: "epoch 1" in _job_log(project, job))
        engine.kill()
        ended_flag.write_text("go")
        wait_for(lambda: (project / ".sagebuild" / "jobs" / job / "exit.json").exists(), 60)
        engine = EngineProcess(project).start()
        build = engine.wait_build(number)
        assert build["status"] == "SUCCEEDED" and build["training_job"] == job and build["version"] == "v3"
        assert "training job " + job + " ended while the engine was down; its result is used" in engine.log.read_text()
        assert _job_log(project, job).count("epoch 1") == 1
        deadline = time.monotonic() + 30
        while engine.endpoint()["model_version"] != "v3":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert invoke(engine.endpoint()["url"])[0] == 200
    finally:
        engine.stop()


def test_engine_killed_before_training_then_restarted_continues_from_the_step_it_was_at(project):
    """Cut off during a step whose work is gone (here: a training job killed with the engine's
    whole process group), the step runs again: a new job, the build goes on."""
    engine = EngineProcess(project).start()
    try:
        (project / "model" / "slow.py").write_text(SLOW)
        edit_config(project, training={"entry_point": "slow.py"})
        number = engine.start_build("will be cut off")["number"]
        job = wait_for(lambda: engine.build(number)["training_job"])
        wait_for_training_processes(project, 2)
        for pid in marked_processes(project):  # as if the machine's power went: nothing survives
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        engine.kill()
        (project / "model" / "slow.py").write_text((project / "model" / "train.py").read_text())  # quick now
        engine = EngineProcess(project).start()
        build = engine.wait_build(number)
        assert build["status"] == "SUCCEEDED", build["failure_reason"]
        assert build["number"] == number and build["attempt"] == 1 and build["version"] == "v1"
        assert [(r["kind"], r["from"]) for r in build["runs"]] == [("resume", "Train")]
        assert build["training_job"] == job + "-t2"
        # The dying engine may see its runner killed and record the job Failed itself, or the next one
        # finds it lost (tests/functional/test_training_contract.py): either way nothing of it runs.
        assert marked_processes(project) == []
    finally:
        engine.stop()


def test_ctrl_c_stops_the_engine_cleanly_mid_build(project):
    engine = EngineProcess(project).start()
    try:
        (project / "model" / "slow.py").write_text(SLOW)
        edit_config(project, training={"entry_point": "slow.py"})
        number = engine.start_build("interrupted by ctrl-c")["number"]
        engine.wait_build(number, step="Train")
        wait_for_training_processes(project, 2)
        engine.proc.send_signal(signal.SIGINT)
        assert engine.proc.wait(timeout=30) == 0
        assert "Stopped." in engine.log.read_text()
        assert marked_processes(project) == []
        assert not (project / ".sagebuild" / "engine.json").exists()
        shown = json.loads(cli(project, "status", str(number), "--json").stdout)
        assert shown["status"] == "INTERRUPTED"
        assert shown["failure_reason"] == "the engine was shut down while the build ran"
    finally:
        engine.stop()


def test_logs_follow_streams_a_running_build_until_it_ends(project, engine):
    (project / "model" / "chatty.py").write_text(
        "import time\nfor i in range(6):\n    print(f'epoch {i}', flush=True)\n    time.sleep(0.3)\n"
        "import os, joblib\nfrom sklearn.dummy import DummyClassifier\n"
        "joblib.dump(DummyClassifier().fit([[0]], [0]), os.path.join(os.environ['SM_MODEL_DIR'], 'm.joblib'))\n")
    edit_config(project, training={"entry_point": "chatty.py", "metric_definitions": []}, gate={"metric": None, "minimum": None},
                deploy={"entry_point": None})
    number = engine.start_build("chatty")["number"]
    out = cli(project, "logs", str(number), "--follow")
    assert out.returncode == 0
    assert [line for line in out.stdout.splitlines() if line.startswith("epoch")] == [f"epoch {i}" for i in range(6)]
    done = engine.wait_build(number)
    assert done["status"] == "SUCCEEDED", (done["failed_step"], done["failure_reason"])
