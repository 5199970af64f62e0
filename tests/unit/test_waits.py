"""The waiting states over fake ports: the task token kept with its job, the one answer it gets
(job events, duplicates, a heartbeat re-check after a lost event, the sweep), and the failures."""
from __future__ import annotations

import json
from typing import Any

import pytest

from lambda_pipeline.errors import SageBuildError, TransientError
from lambda_pipeline.model import Build, BuildStatus
from lambda_pipeline.steps import waits
from lambda_pipeline.steps.handlers import (answer_wait, deploy, record_failure, roll_back, start_training,
                                            sweep_waits)
from tests.unit.fakes import Fakes

CONFIG: dict[str, Any] = {
    "pipeline": "wine",
    "training": {"metric_definitions": [{"Name": "accuracy", "Regex": "accuracy=([0-9.]+)"}]},
    "gate": {"metric": "accuracy", "minimum": 0.8},
    "deploy": {"endpoint": "wine-ep"},
}


@pytest.fixture
def fakes(tmp_path) -> Fakes:
    return Fakes.create(tmp_path, CONFIG)


def train(fakes: Fakes, build: Build, token: str = "token-1") -> dict[str, Any]:
    return start_training(fakes.ports, {"build_id": build.id, "task_token": token})


def record(fakes: Fakes, build: Build, step: str = "training") -> dict[str, Any]:
    found = waits.current(fakes.ports, build.id, step)
    assert found is not None
    return found


def test_the_token_is_kept_with_the_job_and_a_running_job_gets_a_heartbeat(fakes):
    build = fakes.initialized_build()
    out = train(fakes, build)
    job = out["waiting_on"]
    assert out == {"waiting_on": job, "answered": "running"}
    kept = record(fakes, build)
    assert (kept["token"], kept["status"], kept["kind"], kept["name"], kept["step"]) == (
        "token-1", "waiting", "training", job, "training")
    assert fakes.ledger.get_state(f"waiting-on:training:{job}") == f"wait:{build.id}:training"
    assert fakes.callbacks.heartbeats == ["token-1"]
    assert fakes.callbacks.successes == {} and fakes.callbacks.failures == {}


def test_the_jobs_end_answers_the_token_once_with_the_checks_result(fakes):
    build = fakes.initialized_build()
    job = train(fakes, build)["waiting_on"]
    artifact = fakes.training.complete(job, {"accuracy": 0.91})
    assert answer_wait(fakes.ports, "training", job) == "succeeded"
    answer = fakes.callbacks.successes["token-1"]
    assert (answer["status"], answer["artifact"], answer["metrics"]) == ("Completed", artifact, {"accuracy": 0.91})
    assert record(fakes, build)["status"] == "answered"
    stored = fakes.ledger.get_build(build.id)
    assert stored.model_artifact == artifact and stored.metrics == {"accuracy": 0.91}
    # SageMaker sends several events for one change: the others change nothing.
    describes = len(fakes.training.called("describe_training_job"))
    assert answer_wait(fakes.ports, "training", job) == "duplicate"
    assert answer_wait(fakes.ports, "training", job) == "duplicate"
    assert len(fakes.training.called("describe_training_job")) == describes
    assert len(fakes.callbacks.called("send_task_success")) == 1


def test_work_that_ended_before_the_token_was_kept_is_answered_by_the_state_itself(fakes, monkeypatch):
    build = fakes.initialized_build()
    real_create = fakes.training.create_training_job

    def create_and_finish(spec: dict[str, Any]) -> str:  # the job ends before the handler keeps the token
        name = real_create(spec)
        fakes.training.complete(name, {"accuracy": 0.9})
        return name

    monkeypatch.setattr(fakes.training, "create_training_job", create_and_finish)
    assert train(fakes, build)["answered"] == "succeeded"
    assert fakes.callbacks.successes["token-1"]["status"] == "Completed"


def test_a_failed_job_fails_the_token_and_record_failure_gets_the_cause_back(fakes):
    build = fakes.initialized_build()
    job = train(fakes, build)["waiting_on"]
    fakes.training.fail(job, "AlgorithmError: ValueError: bad depth (exit code 1)")
    assert answer_wait(fakes.ports, "training", job) == "failed"
    error, cause = fakes.callbacks.failures["token-1"]
    assert error == "TrainingFailed"
    assert json.loads(cause) == {"errorType": "TrainingFailed",
                                 "errorMessage": "AlgorithmError: ValueError: bad depth (exit code 1)"}
    # moto drops SendTaskFailure's cause: the Catch hands RecordFailure only the error name.
    out = record_failure(fakes.ports, {"build_id": build.id, "error": {"Error": "TrainingFailed"}})
    assert out == {"status": "FAILED", "failed_step": "Train",
                   "reason": "AlgorithmError: ValueError: bad depth (exit code 1)"}


def test_a_heartbeat_timeout_re_enters_the_state_which_finds_the_job_and_starts_nothing_new(fakes):
    build = fakes.initialized_build()
    job = train(fakes, build, "token-1")["waiting_on"]
    fakes.callbacks.gone.add("token-1")  # its heartbeat ran out: the Recheck Pass state enters Train again
    assert train(fakes, build, "token-2") == {"waiting_on": job, "answered": "running"}
    assert len(fakes.training.called("create_training_job")) == 1 and len(fakes.source.called("package_code")) == 1
    assert record(fakes, build)["token"] == "token-2"
    fakes.training.complete(job, {"accuracy": 0.95})
    assert answer_wait(fakes.ports, "training", job) == "succeeded"
    assert "token-2" in fakes.callbacks.successes and "token-1" not in fakes.callbacks.successes


def test_a_lost_event_is_answered_when_the_state_is_entered_again(fakes):
    build = fakes.initialized_build()
    job = train(fakes, build, "token-1")["waiting_on"]
    fakes.training.complete(job, {"accuracy": 0.95})  # ... and its event never arrives
    fakes.callbacks.gone.add("token-1")
    assert train(fakes, build, "token-2") == {"waiting_on": job, "answered": "succeeded"}
    assert fakes.callbacks.successes["token-2"]["metrics"] == {"accuracy": 0.95}


def test_an_answer_to_a_timed_out_token_is_kept_for_the_next_one_without_checking_twice(fakes):
    build = fakes.initialized_build()
    job = train(fakes, build, "token-1")["waiting_on"]
    fakes.training.complete(job, {"accuracy": 0.95})
    fakes.callbacks.gone.add("token-1")  # the event comes as the token times out
    assert answer_wait(fakes.ports, "training", job) == "succeeded"
    assert record(fakes, build)["status"] == "waiting" and record(fakes, build)["outcome"]["result"]["status"] == \
        "Completed"
    ends = [s for s in fakes.ledger.get_build(build.id).steps if s.name == "Train"]
    describes = len(fakes.training.called("describe_training_job"))
    assert train(fakes, build, "token-2")["answered"] == "succeeded"
    assert len(fakes.training.called("describe_training_job")) == describes  # the kept outcome, not a new check
    assert fakes.callbacks.successes["token-2"]["status"] == "Completed"
    assert [s for s in fakes.ledger.get_build(build.id).steps if s.name == "Train"] == ends


def test_the_sweep_heartbeats_running_jobs_answers_ended_ones_and_survives_a_broken_one(fakes):
    running, ended, broken = (fakes.initialized_build() for _ in range(3))
    jobs = {}
    for build, token in ((running, "t-running"), (ended, "t-ended"), (broken, "t-broken")):
        jobs[build.id] = train(fakes, build, token)["waiting_on"]
    del fakes.callbacks.heartbeats[:]
    fakes.training.complete(jobs[ended.id], {"accuracy": 0.9})
    del fakes.training.jobs[jobs[broken.id]]  # describe raises NotFound (a SageBuildError): the wait fails

    class Boom(Exception):
        pass

    outcomes = sweep_waits(fakes.ports)
    assert outcomes == {f"training:{jobs[running.id]}": "running", f"training:{jobs[ended.id]}": "succeeded",
                        f"training:{jobs[broken.id]}": "failed"}
    assert fakes.callbacks.heartbeats == ["t-running"]
    assert fakes.callbacks.failures["t-broken"][0] == "NotFound"
    fakes.training.raises["describe_training_job"] = Boom("socket closed")
    assert sweep_waits(fakes.ports) == {f"training:{jobs[running.id]}": "error"}
    assert record(fakes, running)["status"] == "waiting"  # put back, for the next sweep


def test_a_transient_failure_of_the_check_puts_the_wait_back_for_a_retry(fakes):
    build = fakes.initialized_build()
    job = train(fakes, build)["waiting_on"]
    fakes.training.complete(job, {"accuracy": 0.9})
    fakes.training.raises["describe_training_job"] = TransientError("Rate exceeded")
    with pytest.raises(TransientError):
        answer_wait(fakes.ports, "training", job)
    assert record(fakes, build)["status"] == "waiting"
    del fakes.training.raises["describe_training_job"]
    assert answer_wait(fakes.ports, "training", job) == "succeeded"


def test_a_job_nobody_waits_on_is_none_of_our_business(fakes):
    assert answer_wait(fakes.ports, "training", "someone-elses-job") == "none"
    assert answer_wait(fakes.ports, "endpoint", "wine-ep") == "none"
    assert fakes.callbacks.calls == []


def test_a_build_stopped_while_waiting_wakes_its_state_and_changes_nothing(fakes):
    build = fakes.initialized_build()
    job = train(fakes, build)["waiting_on"]
    fakes.ledger.finish_build(build.id, BuildStatus.ABORTED, reason="stopped by a user")
    fakes.training.complete(job, {"accuracy": 0.9})
    assert answer_wait(fakes.ports, "training", job) == "failed"
    assert fakes.callbacks.failures["token-1"] == ("BuildEnded", "build 1 already ended")
    stored = fakes.ledger.get_build(build.id)
    assert stored.status == "ABORTED" and stored.model_artifact is None and stored.metrics == {}


def test_the_endpoint_event_answers_the_deploy_wait(fakes):
    build = fakes.initialized_build()
    model = {"version": "v1", "model_name": "wine-v1", "artifact": "mem://m.tar.gz", "code": None}
    assert deploy(fakes.ports, {"build_id": build.id, "model": model, "task_token": "t-deploy"})["answered"] == \
        "running"
    fakes.hosting.settle("wine-ep")
    assert answer_wait(fakes.ports, "endpoint", "wine-ep") == "succeeded"
    answer = fakes.callbacks.successes["t-deploy"]
    assert (answer["status"], answer["action"], answer["endpoint_config"]) == (
        "InService", "create", f"wine-v1-{build.id[:6]}")


def test_ports_without_callbacks_cannot_answer(tmp_path):
    fakes = Fakes.create(tmp_path, CONFIG)
    build = fakes.initialized_build()
    ports = fakes.ports
    ports.callbacks = None
    with pytest.raises(SageBuildError, match="these ports have no task callbacks"):
        start_training(ports, {"build_id": build.id, "task_token": "t"})
    assert record(fakes, build)["status"] == "waiting"  # the token is kept: an event can still answer it


def test_a_failed_rollback_wait_gives_record_failure_its_cause_back(fakes):
    fakes.ledger.record_deployment("wine-ep", "v0", "wine-v0-aaaaaa", None)
    fakes.hosting.put_endpoint("wine-ep", "wine-v1-bbbbbb")  # the new model serves, and failed its smoke check
    build = fakes.initialized_build()
    fakes.ledger.begin_step(build.id, "VerifyLive")
    smoke = {"Error": "SmokeTestFailed",
             "Cause": json.dumps({"errorType": "SmokeTestFailed", "errorMessage": "HTTP 500: boom"})}
    state = {"endpoint": "wine-ep", "endpoint_config": "wine-v1-bbbbbb", "previous_config": "wine-v0-aaaaaa"}
    assert roll_back(fakes.ports, {"build_id": build.id, "deploy": state, "error": smoke,
                                   "task_token": "t-rollback"})["answered"] == "running"
    fakes.hosting.fail_update("wine-ep", "the old container did not start", status="Failed")
    assert answer_wait(fakes.ports, "endpoint", "wine-ep") == "failed"
    assert fakes.callbacks.failures["t-rollback"][0] == "DeployFailed"
    # The RollBack Catch puts the (cause-less, on moto) failure under $.error.rollback.
    out = record_failure(fakes.ports, {"build_id": build.id, "error": {**smoke, "rollback": {"Error": "DeployFailed"}}})
    assert out == {"status": "FAILED", "failed_step": "VerifyLive", "reason": (
        "HTTP 500: boom; the automatic rollback failed too: "
        "the rollback of wine-ep failed: the old container did not start")}


def test_of_two_answers_at_the_same_moment_exactly_one_checks_and_answers(fakes, monkeypatch):
    build = fakes.initialized_build()
    job = train(fakes, build)["waiting_on"]
    fakes.training.complete(job, {"accuracy": 0.9})
    real_swap = fakes.ledger.swap_state
    raced: list[str] = []

    def another_answer_first(key: str, expected: str | None, value: str) -> bool:
        if not raced and key.startswith("wait:"):  # both read "waiting"; the other claims it first
            raced.append(key)
            assert answer_wait(fakes.ports, "training", job) == "succeeded"
        return real_swap(key, expected, value)

    monkeypatch.setattr(fakes.ledger, "swap_state", another_answer_first)
    assert answer_wait(fakes.ports, "training", job) == "duplicate"
    assert raced and len(fakes.callbacks.called("send_task_success")) == 1
    assert [s.status for s in fakes.ledger.get_build(build.id).steps if s.name == "Train"] == ["SUCCEEDED"]


def test_a_failures_cause_is_kept_before_the_failure_is_sent(fakes, monkeypatch):
    """The failed state's Catch runs RecordFailure at once, on another thread or Lambda: the cause
    it looks up (moto drops SendTaskFailure's) must be in the ledger before the failure is sent."""
    build = fakes.initialized_build()
    job = train(fakes, build)["waiting_on"]
    fakes.training.fail(job, "AlgorithmError: learning rate must be positive")
    real_send = fakes.callbacks.send_task_failure
    seen: list[str | None] = []

    def record_failure_runs_at_once(token: str, error: str, cause: str) -> bool:
        seen.append(waits.failure_cause(fakes.ports, build.id, error))
        return real_send(token, error, cause)

    monkeypatch.setattr(fakes.callbacks, "send_task_failure", record_failure_runs_at_once)
    assert answer_wait(fakes.ports, "training", job) == "failed"
    assert [json.loads(c)["errorMessage"] if c else c for c in seen] == [
        "AlgorithmError: learning rate must be positive"]
    assert answer_wait(fakes.ports, "training", job) == "duplicate"  # claimed while the failure was sent


# -- from the waits branch (its FakeCallbacks' answers, read through answers()) -------------
def waiting_training(tmp_path, token="token-1"):
    fakes = Fakes.create(tmp_path)
    build = fakes.initialized_build()
    out = start_training(fakes.ports, {"build_id": build.id, "task_token": token})
    return fakes, build, out


def answers(fakes):
    """{token: ("success", output) | ("failure", (error, cause))} of the fake callbacks."""
    return {**{t: ("success", o) for t, o in fakes.callbacks.successes.items()},
            **{t: ("failure", f) for t, f in fakes.callbacks.failures.items()}}


def test_the_waiting_state_keeps_its_token_with_the_job_and_checks_it_once(tmp_path):
    fakes, build, out = waiting_training(tmp_path)
    job = fakes.ledger.get_build(build.id).training_job
    assert out == {"waiting_on": job, "answered": "running"}
    assert fakes.callbacks.heartbeats == ["token-1"] and answers(fakes) == {}
    record = waits.current(fakes.ports, build.id, "training")
    assert record["token"] == "token-1" and record["status"] == "waiting" and record["state"]["job_name"] == job


def test_the_jobs_end_answers_once_with_the_checks_result(tmp_path):
    fakes, build, _ = waiting_training(tmp_path)
    job = fakes.ledger.get_build(build.id).training_job
    fakes.training.complete(job, {"validation:accuracy": 0.97})
    assert answer_wait(fakes.ports, "training", job) == "succeeded"
    kind, output = answers(fakes)["token-1"]
    assert kind == "success" and output["status"] == "Completed" and output["metrics"] == {"validation:accuracy": 0.97}
    assert answer_wait(fakes.ports, "training", job) == "duplicate"  # SageMaker's second event
    assert [s.name for s in fakes.ledger.get_build(build.id).steps].count("Train") == 1
    assert answer_wait(fakes.ports, "training", "another-job") == "none"


def test_a_failed_job_fails_the_state_and_its_cause_survives_for_the_record(tmp_path):
    fakes, build, _ = waiting_training(tmp_path)
    job = fakes.ledger.get_build(build.id).training_job
    fakes.training.fail(job, "AlgorithmError: out of memory")
    assert answer_wait(fakes.ports, "training", job) == "failed"
    kind, (error, cause) = answers(fakes)["token-1"]
    assert kind == "failure" and error == "TrainingFailed"
    assert json.loads(cause) == {"errorType": "TrainingFailed", "errorMessage": "AlgorithmError: out of memory"}
    # the local engine (moto) drops SendTaskFailure's cause: the failure record still has it
    failed = record_failure(fakes.ports, {"build_id": build.id, "error": {"Error": "TrainingFailed"}})
    assert failed["reason"] == "AlgorithmError: out of memory" and failed["failed_step"] == "Train"


def test_an_answer_to_a_timed_out_token_is_kept_for_the_states_next_token(tmp_path):
    fakes, build, _ = waiting_training(tmp_path)
    job = fakes.ledger.get_build(build.id).training_job
    fakes.training.complete(job, {"validation:accuracy": 0.9})
    fakes.callbacks.gone.add("token-1")  # its heartbeat timed out a moment ago
    assert answer_wait(fakes.ports, "training", job) == "succeeded"
    assert answers(fakes) == {}
    checks = len([c for c in fakes.training.calls if c[0] == "describe_training_job"])
    out = start_training(fakes.ports, {"build_id": build.id, "task_token": "token-2"})
    assert out["answered"] == "succeeded" and answers(fakes)["token-2"][0] == "success"
    assert len([c for c in fakes.training.calls if c[0] == "describe_training_job"]) == checks  # no second check
    assert len([c for c in fakes.training.calls if c[0] == "create_training_job"]) == 1  # nor a second job
    assert [s.name for s in fakes.ledger.get_build(build.id).steps].count("Train") == 1


def test_a_stopped_build_is_woken_with_build_ended_and_nothing_else_happens(tmp_path):
    fakes, build, _ = waiting_training(tmp_path)
    job = fakes.ledger.get_build(build.id).training_job
    fakes.ledger.finish_build(build.id, BuildStatus.ABORTED, reason="stopped by a user")
    fakes.training.complete(job, {"validation:accuracy": 0.97})
    assert answer_wait(fakes.ports, "training", job) == "failed"
    assert answers(fakes)["token-1"] == ("failure", ("BuildEnded", f"build {build.number} already ended"))
    assert fakes.ledger.get_build(build.id).metrics == {}


def test_the_sweep_heartbeats_running_jobs_and_answers_ended_ones(tmp_path):
    fakes, build, _ = waiting_training(tmp_path)
    job = fakes.ledger.get_build(build.id).training_job
    assert sweep_waits(fakes.ports) == {f"training:{job}": "running"}
    fakes.training.complete(job, {"validation:accuracy": 0.97})
    assert sweep_waits(fakes.ports) == {f"training:{job}": "succeeded"}
    assert sweep_waits(fakes.ports) == {}  # nothing waits any more
