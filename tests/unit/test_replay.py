"""Kept step outputs: a later execution of the same build replays what an earlier one finished
(fake ports, the real SQLite ledger; no engine)."""
import pytest

from lambda_pipeline.model import Build
from lambda_pipeline.steps import bind_handlers, replay, waits
from lambda_pipeline.steps.handlers import next_job_name
from tests.unit.fakes import Fakes


@pytest.fixture
def world(tmp_path):
    from lambda_pipeline.config import validate_config
    fakes = Fakes.create(tmp_path, validate_config({"pipeline": "wine"}, "test config"))
    return fakes, fakes.ports, fakes.callbacks


def test_a_finished_plain_step_is_kept_and_replayed_without_running_again(world):
    fakes, ports, _ = world
    build = fakes.running_build()
    handlers = bind_handlers(ports)
    first = handlers["initialize"]({"build_id": build.id})
    assert replay.kept(ports, build.id, "Initialize") == first
    steps_before = [(s.name, s.started_at) for s in fakes.ledger.get_build(build.id).steps]
    fakes.config.config["pipeline"] = "changed"  # a replay must not read the config again
    again = handlers["initialize"]({"build_id": build.id})
    assert again == first and again["pipeline"] == "wine"
    assert [(s.name, s.started_at) for s in fakes.ledger.get_build(build.id).steps] == steps_before


def test_a_kept_waiting_step_answers_its_new_token_at_once_and_starts_no_job(world):
    fakes, ports, callbacks = world
    build = fakes.initialized_build()
    output = {"job_name": "wine-v1-abc", "status": "Completed", "artifact": "file:///m.tar.gz", "metrics": {}}
    replay.keep(ports, build.id, "Train", output)
    answer = bind_handlers(ports)["start_training"]({"build_id": build.id, "task_token": "token-2"})
    assert answer == {"replayed": "Train"}
    assert callbacks.successes == {"token-2": output}
    assert fakes.training.called("create_training_job") == []


def test_steps_that_only_record_or_recover_are_never_replayed():
    assert set(replay.STEP_OF_TASK) == {"initialize", "start_image_build", "start_training", "evaluate", "register",
                                        "deploy", "verify_live"}


@pytest.mark.parametrize("failed, entry", [("Train", "Train"), ("Deploy", "Deploy"), ("VerifyLive", "Deploy"),
                                           ("RollBack", "Deploy"), ("Notify", "Notify"), (None, "Initialize"),
                                           ("SomethingElse", "Initialize")])
def test_where_a_retry_goes_on_from(failed, entry):
    build = Build("b1", 1, "wine", "FAILED", "cli", "r", 0.0, failed_step=failed)
    assert replay.entry_step(build) == entry


def test_forgetting_from_a_step_drops_its_output_and_every_later_one_and_names_their_waits(world):
    fakes, ports, _ = world
    build = fakes.running_build()
    for step in ("Initialize", "Train", "Evaluate", "Register", "Deploy"):
        replay.keep(ports, build.id, step, {"step": step})
    waits_to_forget = replay.forget_from(ports, build.id, "Evaluate")
    assert [s for s in ("Initialize", "Train", "Evaluate", "Register", "Deploy")
            if replay.kept(ports, build.id, s)] == ["Initialize", "Train"]
    assert waits_to_forget == ["deploy", "rollback"]
    assert replay.forget_from(ports, build.id, "Train") == ["training", "deploy", "rollback"]


def test_a_forgotten_wait_record_is_gone_for_the_step_that_enters_again(world):
    fakes, ports, _ = world
    build = fakes.initialized_build()
    waits.begin(ports, build.id, "training", "wine-v1-abc", {"job_name": "wine-v1-abc"}, "token-1")
    assert waits.current(ports, build.id, "training")["name"] == "wine-v1-abc"
    waits.forget(ports, build.id, "training")
    assert waits.current(ports, build.id, "training") is None
    assert waits.answer(ports, "training", "wine-v1-abc", {}) == "none"  # the old job's end answers nobody


def test_a_retried_training_gets_a_new_job_name():
    assert next_job_name("wine-v1-abc123", "wine-v1-abc123") == "wine-v1-abc123-t2"
    assert next_job_name("wine-v1-abc123", "wine-v1-abc123-t2") == "wine-v1-abc123-t3"
    assert len(next_job_name("x" * 63, "x" * 63)) <= 63
