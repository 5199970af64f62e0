"""The waits' logic over fake ports: the token kept with the job, one answer per change, a
heartbeat while the job runs, an outcome kept when its token had already timed out."""
import json

from lambda_pipeline.model import BuildStatus
from lambda_pipeline.steps import answer_wait, sweep_waits, waits
from lambda_pipeline.steps.handlers import record_failure, start_training
from tests.unit.fakes import Fakes


def waiting_training(tmp_path, token="token-1"):
    fakes = Fakes.create(tmp_path)
    build = fakes.initialized_build()
    fakes.callbacks.waiting.add(token)
    out = start_training(fakes.ports, {"build_id": build.id, "task_token": token})
    return fakes, build, out


def test_the_waiting_state_keeps_its_token_with_the_job_and_checks_it_once(tmp_path):
    fakes, build, out = waiting_training(tmp_path)
    job = fakes.ledger.get_build(build.id).training_job
    assert out == {"waiting_on": job, "answered": "running"}
    assert fakes.callbacks.heartbeats == ["token-1"] and fakes.callbacks.answers == {}
    record = waits.current(fakes.ports, build.id, "training")
    assert record["token"] == "token-1" and record["status"] == "waiting" and record["state"]["job_name"] == job


def test_the_jobs_end_answers_once_with_the_checks_result(tmp_path):
    fakes, build, _ = waiting_training(tmp_path)
    job = fakes.ledger.get_build(build.id).training_job
    fakes.training.complete(job, {"validation:accuracy": 0.97})
    assert answer_wait(fakes.ports, "training", job) == "succeeded"
    kind, output = fakes.callbacks.answers["token-1"]
    assert kind == "success" and output["status"] == "Completed" and output["metrics"] == {"validation:accuracy": 0.97}
    assert answer_wait(fakes.ports, "training", job) == "duplicate"  # SageMaker's second event
    assert [s.name for s in fakes.ledger.get_build(build.id).steps].count("Train") == 1
    assert answer_wait(fakes.ports, "training", "another-job") == "none"


def test_a_failed_job_fails_the_state_and_its_cause_survives_for_the_record(tmp_path):
    fakes, build, _ = waiting_training(tmp_path)
    job = fakes.ledger.get_build(build.id).training_job
    fakes.training.fail(job, "AlgorithmError: out of memory")
    assert answer_wait(fakes.ports, "training", job) == "failed"
    kind, (error, cause) = fakes.callbacks.answers["token-1"]
    assert kind == "failure" and error == "TrainingFailed"
    assert json.loads(cause) == {"errorType": "TrainingFailed", "errorMessage": "AlgorithmError: out of memory"}
    # the local engine (moto) drops SendTaskFailure's cause: the failure record still has it
    failed = record_failure(fakes.ports, {"build_id": build.id, "error": {"Error": "TrainingFailed"}})
    assert failed["reason"] == "AlgorithmError: out of memory" and failed["failed_step"] == "Train"


def test_an_answer_to_a_timed_out_token_is_kept_for_the_states_next_token(tmp_path):
    fakes, build, _ = waiting_training(tmp_path)
    job = fakes.ledger.get_build(build.id).training_job
    fakes.training.complete(job, {"validation:accuracy": 0.9})
    fakes.callbacks.waiting.clear()  # its heartbeat timed out a moment ago
    assert answer_wait(fakes.ports, "training", job) == "succeeded"
    assert fakes.callbacks.answers == {}
    fakes.callbacks.waiting.add("token-2")  # the state entered again
    checks = len([c for c in fakes.training.calls if c[0] == "describe_training_job"])
    out = start_training(fakes.ports, {"build_id": build.id, "task_token": "token-2"})
    assert out["answered"] == "succeeded" and fakes.callbacks.answers["token-2"][0] == "success"
    assert len([c for c in fakes.training.calls if c[0] == "describe_training_job"]) == checks  # no second check
    assert len([c for c in fakes.training.calls if c[0] == "create_training_job"]) == 1  # nor a second job
    assert [s.name for s in fakes.ledger.get_build(build.id).steps].count("Train") == 1


def test_a_stopped_build_is_woken_with_build_ended_and_nothing_else_happens(tmp_path):
    fakes, build, _ = waiting_training(tmp_path)
    job = fakes.ledger.get_build(build.id).training_job
    fakes.ledger.finish_build(build.id, BuildStatus.ABORTED, reason="stopped by a user")
    fakes.training.complete(job, {"validation:accuracy": 0.97})
    assert answer_wait(fakes.ports, "training", job) == "failed"
    assert fakes.callbacks.answers["token-1"] == ("failure", ("BuildEnded", f"build {build.number} already ended"))
    assert fakes.ledger.get_build(build.id).metrics == {}


def test_the_sweep_heartbeats_running_jobs_and_answers_ended_ones(tmp_path):
    fakes, build, _ = waiting_training(tmp_path)
    job = fakes.ledger.get_build(build.id).training_job
    assert sweep_waits(fakes.ports) == {f"training:{job}": "running"}
    fakes.training.complete(job, {"validation:accuracy": 0.97})
    assert sweep_waits(fakes.ports) == {f"training:{job}": "succeeded"}
    assert sweep_waits(fakes.ports) == {}  # nothing waits any more
