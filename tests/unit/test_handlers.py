"""Every branch of every step handler, over fake ports (tests/unit/fakes.py) and a real SQLite
ledger: no engine, no processes. Events are shaped as the ASL template passes them."""
from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from lambda_pipeline.errors import (BuildEnded, ConfigError, DeployFailed, GateFailed, ImageBuildFailed,
                                    SmokeTestFailed, TrainingFailed, TrainingStopped)
from lambda_pipeline.model import Build, BuildStatus
from lambda_pipeline.steps import STEPS, bind_handlers, waits
from lambda_pipeline.steps.handlers import (answer_wait, deploy, endpoint_status, evaluate, image_build_status, initialize,
                                            notify_success, parse_error, record_failure, register, roll_back,
                                            rollback_status, start_image_build, start_training, training_status,
                                            verify_live)
from tests.unit.fakes import Fakes

CONFIG: dict[str, Any] = {
    "pipeline": "wine",
    "training": {"channels": {"train": "data/train"}, "hyperparameters": {"depth": 3},
                 "source_dir": "src", "max_runtime_seconds": 120,
                 "metric_definitions": [{"Name": "accuracy", "Regex": "accuracy=([0-9.]+)"}]},
    "gate": {"metric": "accuracy", "minimum": 0.8},
    "deploy": {"endpoint": "wine-ep", "entry_point": "serve.py", "sample_payload": "7.4,0.7,0", "port": 8123},
    "polling": {"heartbeat_seconds": 120},
}
EP = "wine-ep"


@pytest.fixture
def fakes(tmp_path) -> Fakes:
    return Fakes.create(tmp_path, CONFIG)


def steps_of(fakes: Fakes, build: Build) -> dict[str, tuple[str, str | None]]:
    """{step name: (status, detail)} as the ledger has them."""
    return {s.name: (s.status, s.detail) for s in fakes.ledger.get_build(build.id).steps}


def serving(fakes: Fakes, version: str, config_name: str, metrics: dict[str, float] | None = None) -> None:
    """An earlier build's model ``version`` is registered and serves ``EP`` with ``config_name``."""
    fakes.ledger.register_model(version, "b-earlier", f"mem://{version}.tar.gz", None, metrics or {"accuracy": 0.9},
                                {"pipeline": "wine"})
    fakes.ledger.record_deployment(EP, version, config_name, "b-earlier")
    fakes.hosting.put_endpoint(EP, config_name)


def wait_state(fakes: Fakes, build: Build, step: str) -> dict[str, Any]:
    """What a waiting step keeps with its token: the state its status check reads."""
    record = waits.current(fakes.ports, build.id, step)
    assert record is not None, f"{step} of build {build.number} never waited"
    return dict(record["state"])


def deploy_state(fakes: Fakes, build: Build, token: str = "token-deploy") -> dict[str, Any]:
    """Run Deploy (its waiting state) and return what it waits with."""
    out = deploy(fakes.ports, {"build_id": build.id, "model": MODEL, "task_token": token})
    assert out["waiting_on"] == EP
    return wait_state(fakes, build, "deploy")


def lambda_error(error_type: str, message: str) -> dict[str, str]:
    """A Catch's ``$.error`` for a Lambda that raised ``error_type(message)``."""
    return {"Error": error_type, "Cause": json.dumps({"errorType": error_type, "errorMessage": message,
                                                      "trace": ["..."]})}


# -- initialize ---------------------------------------------------------------------------
def test_initialize_assigns_the_version_and_snapshots_the_config_with_the_overrides(fakes):
    build = fakes.running_build(hyperparameters={"depth": 5, "lr": 0.1})
    out = initialize(fakes.ports, {"build_id": build.id})
    assert out == {"version": "v1", "pipeline": "wine", "heartbeat_seconds": 120}
    stored = fakes.ledger.get_build(build.id)
    assert stored.version == "v1" and stored.endpoint_name == EP and stored.current_step == "Initialize"
    assert stored.config is not None
    assert stored.config["training"]["hyperparameters"] == {"depth": 5, "lr": 0.1}
    assert stored.config["gate"] == {"metric": "accuracy", "minimum": 0.8, "must_beat_live": False, "tolerance": 0.0}
    assert steps_of(fakes, build) == {"Initialize": ("SUCCEEDED", "version v1")}


def test_the_snapshot_not_the_store_is_what_later_steps_use(fakes):
    build = fakes.running_build()
    initialize(fakes.ports, {"build_id": build.id})
    fakes.config.config["gate"]["minimum"] = 0.99  # someone edits the config while the build runs
    out = evaluate(fakes.ports, {"build_id": build.id, "training": {"metrics": {"accuracy": 0.85}}})
    assert out["minimum"] == 0.8 and out["passed"] is True


def test_initialize_rejects_bad_overrides_naming_the_key_and_snapshots_nothing(fakes):
    build = fakes.running_build(hyperparameters={"depth": [1, 2]})
    with pytest.raises(ConfigError, match=r"training\.hyperparameters\.depth"):
        initialize(fakes.ports, {"build_id": build.id})
    stored = fakes.ledger.get_build(build.id)
    assert stored.config is None and stored.version is None
    assert steps_of(fakes, build) == {"Initialize": ("RUNNING", None)}


def test_initialize_numbers_versions_by_build(fakes):
    fakes.running_build()
    second = fakes.running_build()
    assert initialize(fakes.ports, {"build_id": second.id})["version"] == "v2"


def test_steps_after_initialize_refuse_a_build_without_a_snapshot(fakes):
    build = fakes.running_build()
    with pytest.raises(Exception, match="build 1 has no config snapshot: Initialize did not run"):
        evaluate(fakes.ports, {"build_id": build.id, "training": {"metrics": {}}})


# -- evaluate -----------------------------------------------------------------------------
def test_evaluate_passes_at_the_minimum_and_records_the_summary(fakes):
    build = fakes.initialized_build()
    out = evaluate(fakes.ports, {"build_id": build.id, "training": {"metrics": {"accuracy": 0.8, "loss": 0.3}}})
    assert out["passed"] is True and out["value"] == 0.8 and out["live_value"] is None
    assert out["metrics"] == {"accuracy": 0.8, "loss": 0.3}
    assert steps_of(fakes, build)["Evaluate"] == ("SUCCEEDED", "accuracy 0.8 >= 0.8")


def test_evaluate_fails_below_the_minimum_and_leaves_the_step_to_record_failure(fakes):
    build = fakes.initialized_build()
    with pytest.raises(GateFailed, match="accuracy 0.61 is below the minimum 0.8"):
        evaluate(fakes.ports, {"build_id": build.id, "training": {"metrics": {"accuracy": 0.61}}})
    stored = fakes.ledger.get_build(build.id)
    assert stored.current_step == "Evaluate" and steps_of(fakes, build)["Evaluate"][0] == "RUNNING"


def test_evaluate_without_metrics_names_what_is_missing(fakes):
    build = fakes.initialized_build()
    with pytest.raises(GateFailed, match=r"did not report accuracy \(metrics reported: none\)"):
        evaluate(fakes.ports, {"build_id": build.id, "training": {}})


def _must_beat_live(fakes: Fakes, tolerance: float = 0.0) -> Build:
    fakes.config.config["gate"].update(must_beat_live=True, tolerance=tolerance)
    serving(fakes, "v7", "wine-v7-aaaaaa", {"accuracy": 0.93})
    return fakes.initialized_build()


def test_evaluate_compares_with_the_live_model(fakes):
    build = _must_beat_live(fakes)
    out = evaluate(fakes.ports, {"build_id": build.id, "training": {"metrics": {"accuracy": 0.95}}})
    assert out["live_value"] == 0.93
    assert steps_of(fakes, build)["Evaluate"] == ("SUCCEEDED", "accuracy 0.95 >= 0.8, live v7 0.93")


def test_evaluate_fails_below_the_live_model_naming_it(fakes):
    build = _must_beat_live(fakes)
    with pytest.raises(GateFailed, match=r"accuracy 0.9 is below the live model's 0.93 \(v7\)$"):
        evaluate(fakes.ports, {"build_id": build.id, "training": {"metrics": {"accuracy": 0.9}}})


def test_evaluate_within_the_tolerance_of_the_live_model_passes(tmp_path):
    fakes = Fakes.create(tmp_path, CONFIG)
    build = _must_beat_live(fakes, tolerance=0.05)
    assert evaluate(fakes.ports, {"build_id": build.id, "training": {"metrics": {"accuracy": 0.9}}})["passed"]


def test_evaluate_with_a_live_deployment_whose_model_is_not_registered_checks_only_the_minimum(fakes):
    fakes.config.config["gate"]["must_beat_live"] = True
    fakes.ledger.record_deployment(EP, "v0", "wine-v0-aaaaaa", None)  # deployed before the registry existed
    build = fakes.initialized_build()
    out = evaluate(fakes.ports, {"build_id": build.id, "training": {"metrics": {"accuracy": 0.81}}})
    assert out["live_value"] is None and out["summary"] == "accuracy 0.81 >= 0.8"


# -- register -----------------------------------------------------------------------------
def test_register_records_the_version_with_its_artifact_metrics_config_data_and_source(fakes):
    build = fakes.initialized_build()
    training = {"artifact": "mem://model.tar.gz", "code": "mem://code.tar.gz", "metrics": {"accuracy": 0.9},
                "data": {"train": {"uri": "mem://data/train", "digest": "d1"}}}
    out = register(fakes.ports, {"build_id": build.id, "training": training, "evaluation": {"passed": True}})
    assert out == {"version": "v1", "model_name": "wine-v1", "artifact": "mem://model.tar.gz",
                   "code": "mem://code.tar.gz"}
    model = fakes.ledger.get_model("v1")
    assert model is not None
    assert (model["build_id"], model["artifact"], model["code"], model["metrics"]) == (
        build.id, "mem://model.tar.gz", "mem://code.tar.gz", {"accuracy": 0.9})
    assert model["config"]["deploy"]["endpoint"] == EP
    assert model["data_refs"] == {"train": {"uri": "mem://data/train", "digest": "d1"}}
    assert model["source_ref"] == {"trigger": "cli", "reason": "test"}
    assert steps_of(fakes, build)["Register"] == ("SUCCEEDED", "v1")


def test_register_without_code_or_metrics(fakes):
    build = fakes.initialized_build()
    out = register(fakes.ports, {"build_id": build.id, "training": {"artifact": "mem://m.tar.gz"}})
    assert out["code"] is None
    model = fakes.ledger.get_model("v1")
    assert model is not None and model["metrics"] == {} and model["code"] is None


# -- deploy -------------------------------------------------------------------------------
MODEL = {"version": "v1", "model_name": "wine-v1", "artifact": "mem://model.tar.gz", "code": "mem://code.tar.gz"}


def test_deploy_creates_the_endpoint_when_there_is_none(fakes):
    build = fakes.initialized_build()
    out = deploy(fakes.ports, {"build_id": build.id, "model": MODEL, "task_token": "token-deploy"})
    assert out == {"waiting_on": EP, "answered": "running"}  # checked once: Creating, so it waits
    config_name = f"wine-v1-{build.id[:6]}"
    assert wait_state(fakes, build, "deploy") == {"endpoint": EP, "endpoint_config": config_name, "action": "create",
                                                  "status": "Pending", "previous_config": None}
    assert fakes.hosting.called("create_model") == [("wine-v1", "mem://model.tar.gz", "mem://code.tar.gz",
                                                     "serve.py", None)]
    assert fakes.hosting.called("create_endpoint_config") == [(config_name, "wine-v1")]
    assert fakes.hosting.called("create_endpoint") == [(EP, config_name, 8123)]
    assert fakes.hosting.called("update_endpoint") == [] and fakes.hosting.called("delete_endpoint") == []
    stored = fakes.ledger.get_build(build.id)
    assert (stored.endpoint_name, stored.endpoint_config, stored.current_step) == (EP, config_name, "Deploy")


def test_deploy_updates_a_serving_endpoint_with_the_configured_traffic_shift(fakes):
    fakes.config.config["deploy"]["traffic"] = {"type": "canary", "percent": 20, "wait_seconds": 60,
                                                "alarms": ["errors"]}
    serving(fakes, "v0", "wine-v0-aaaaaa")
    build = fakes.initialized_build()
    out = deploy_state(fakes, build)
    assert out["action"] == "update" and out["previous_config"] == "wine-v0-aaaaaa"
    assert fakes.hosting.called("update_endpoint") == [
        (EP, out["endpoint_config"], {"type": "canary", "percent": 20, "wait_seconds": 60, "alarms": ["errors"]})]
    assert fakes.hosting.called("create_endpoint") == []


def test_deploy_recreates_an_endpoint_that_failed_before_it_ever_served(fakes):
    fakes.hosting.put_endpoint(EP, None, status="Failed", FailureReason="the first model did not start")
    build = fakes.initialized_build()
    out = deploy_state(fakes, build)
    assert out["action"] == "create" and out["previous_config"] is None
    assert fakes.hosting.methods()[:6] == ["create_model", "create_endpoint_config", "describe_endpoint",
                                           "delete_endpoint", "create_endpoint", "describe_endpoint"]


def test_deploy_updates_a_failed_endpoint_that_still_has_a_config(fakes):
    fakes.hosting.put_endpoint(EP, "wine-v0-aaaaaa", status="Failed", FailureReason="instance lost")
    build = fakes.initialized_build()
    out = deploy_state(fakes, build)
    assert out["action"] == "update" and out["previous_config"] == "wine-v0-aaaaaa"
    assert fakes.hosting.called("delete_endpoint") == []


def test_deploy_without_an_inference_script_passes_no_code_and_uses_the_snapshot_image(fakes):
    fakes.config.config["deploy"]["entry_point"] = None
    fakes.config.config["image"]["uri"] = "123.dkr.ecr/wine:v1"
    build = fakes.initialized_build()
    deploy_state(fakes, build)
    assert fakes.hosting.called("create_model") == [("wine-v1", "mem://model.tar.gz", None, None,
                                                     "123.dkr.ecr/wine:v1")]


def test_deploy_of_a_stopped_build_starts_nothing(fakes):
    build = fakes.initialized_build()
    fakes.ledger.finish_build(build.id, BuildStatus.ABORTED, reason="stopped by a user")
    with pytest.raises(BuildEnded, match="build 1 already ended .aborted.; not starting more work"):
        deploy(fakes.ports, {"build_id": build.id, "model": MODEL, "task_token": "token-deploy"})
    assert fakes.hosting.calls == [] and waits.current(fakes.ports, build.id, "deploy") is None


# -- verify_live --------------------------------------------------------------------------
def _deployed(fakes: Fakes, previous: str | None = None) -> tuple[Build, dict[str, Any]]:
    """A build whose deploy finished: its config serves (or the platform says otherwise later)."""
    if previous:
        serving(fakes, "v0", previous)
    build = fakes.initialized_build()
    deploy_state(fakes, build)
    fakes.hosting.settle(EP)
    assert answer_wait(fakes.ports, "endpoint", EP) == "succeeded"  # the endpoint's InService event
    return build, fakes.callbacks.successes["token-deploy"]


def test_verify_live_records_the_deployment_after_the_smoke_invocation(fakes):
    build, state = _deployed(fakes)
    out = verify_live(fakes.ports, {"build_id": build.id, "deploy": state, "model": MODEL})
    assert out == {"endpoint": EP, "endpoint_config": state["endpoint_config"], "url": f"http://fake/{EP}"}
    assert fakes.hosting.called("invoke_endpoint") == [(EP, b"7.4,0.7,0", "text/csv", "application/json")]
    live = fakes.ledger.live_deployment(EP)
    assert live is not None and (live["version"], live["endpoint_config"], live["build_id"], live["kind"]) == (
        "v1", state["endpoint_config"], build.id, "build")
    assert steps_of(fakes, build)["VerifyLive"] == ("SUCCEEDED", f"http://fake/{EP}")


def test_verify_live_without_a_sample_payload_only_pings(fakes):
    fakes.config.config["deploy"]["sample_payload"] = None
    build, state = _deployed(fakes)
    verify_live(fakes.ports, {"build_id": build.id, "deploy": state, "model": MODEL})
    assert fakes.hosting.called("invoke_endpoint") == [] and fakes.hosting.called("ping_endpoint") == [(EP,)]
    assert fakes.ledger.live_deployment(EP) is not None


def test_verify_live_catches_a_silent_rollback_naming_both_configs(fakes):
    build, state = _deployed(fakes, previous="wine-v0-aaaaaa")
    fakes.hosting.put_endpoint(EP, "wine-v0-aaaaaa", FailureReason="the new container failed its health check")
    with pytest.raises(DeployFailed) as err:
        verify_live(fakes.ports, {"build_id": build.id, "deploy": state, "model": MODEL})
    assert str(err.value) == (f"endpoint {EP} still serves wine-v0-aaaaaa, not {state['endpoint_config']}: "
                              "the new container failed its health check")
    live = fakes.ledger.live_deployment(EP)
    assert live is not None and live["version"] == "v0"


def test_verify_live_of_a_vanished_endpoint_says_it_serves_nothing(fakes):
    build, state = _deployed(fakes)
    fakes.hosting.endpoints.clear()
    with pytest.raises(DeployFailed, match=f"still serves nothing, not {state['endpoint_config']}: no reason given"):
        verify_live(fakes.ports, {"build_id": build.id, "deploy": state, "model": MODEL})


def test_verify_live_fails_when_the_endpoint_does_not_answer_ping(fakes):
    build, state = _deployed(fakes)
    fakes.hosting.ping[EP] = False
    with pytest.raises(DeployFailed, match=f"^endpoint {EP} does not answer /ping$"):
        verify_live(fakes.ports, {"build_id": build.id, "deploy": state, "model": MODEL})
    assert fakes.ledger.live_deployment(EP) is None and fakes.hosting.called("invoke_endpoint") == []


@pytest.mark.parametrize("answer, said", [
    ((500, b"  Traceback: ValueError: could not convert string\n"), "HTTP 500: Traceback: ValueError: could not"),
    ((0, b"the endpoint did not answer: connection refused"), "nothing: the endpoint did not answer"),
])
def test_verify_live_smoke_failure_says_what_came_back_and_still_records_the_deployment(fakes, answer, said):
    build, state = _deployed(fakes)
    fakes.hosting.answer = answer
    with pytest.raises(SmokeTestFailed) as err:
        verify_live(fakes.ports, {"build_id": build.id, "deploy": state, "model": MODEL})
    assert str(err.value).startswith(f"the smoke invocation with the sample payload answered {said}")
    live = fakes.ledger.live_deployment(EP)  # it served traffic, so roll_back can mark it rolled back
    assert live is not None and live["version"] == "v1"


def test_a_smoke_answer_is_cut_to_200_characters(fakes):
    build, state = _deployed(fakes)
    fakes.hosting.answer = (502, b"x" * 1000)
    with pytest.raises(SmokeTestFailed) as err:
        verify_live(fakes.ports, {"build_id": build.id, "deploy": state, "model": MODEL})
    assert str(err.value).endswith("HTTP 502: " + "x" * 200)


# -- notify_success -----------------------------------------------------------------------
def test_notify_success_finishes_the_build_and_tells_people_what_is_live(fakes):
    build, state = _deployed(fakes)
    verify_live(fakes.ports, {"build_id": build.id, "deploy": state, "model": MODEL})
    fakes.ledger.update_build(build.id, metrics={"accuracy": 0.91})
    assert notify_success(fakes.ports, {"build_id": build.id}) == {"status": "SUCCEEDED"}
    stored = fakes.ledger.get_build(build.id)
    assert stored.status == "SUCCEEDED" and stored.failed_step is None
    assert steps_of(fakes, build)["Notify"][0] == "SUCCEEDED"
    [(event, payload)] = fakes.notifier.published
    assert event == "build.succeeded"
    assert payload["status"] == "SUCCEEDED" and payload["version"] == "v1" and payload["build_number"] == 1
    assert payload["gate"] == {"metric": "accuracy", "value": 0.91, "minimum": 0.8}
    assert payload["live"]["version"] == "v1" and payload["live"]["endpoint"] == EP


def test_a_failing_notifier_never_fails_the_build(fakes, caplog):
    build = fakes.initialized_build()
    fakes.notifier.raises["publish"] = ConnectionError("smtp down")
    with caplog.at_level(logging.ERROR):
        assert notify_success(fakes.ports, {"build_id": build.id}) == {"status": "SUCCEEDED"}
    assert fakes.ledger.get_build(build.id).status == "SUCCEEDED"
    assert any(r.message == "notification failed" and r.exc_info for r in caplog.records)


# -- record_failure -----------------------------------------------------------------------
def test_record_failure_records_the_failed_step_and_reason_and_tells_people(fakes):
    build = fakes.initialized_build()
    fakes.ledger.begin_step(build.id, "Train")
    out = record_failure(fakes.ports, {"build_id": build.id,
                                       "error": lambda_error("TrainingFailed", "ValueError: bad depth (exit code 1)")})
    assert out == {"status": "FAILED", "failed_step": "Train", "reason": "ValueError: bad depth (exit code 1)"}
    stored = fakes.ledger.get_build(build.id)
    assert (stored.status, stored.error_type) == ("FAILED", "TrainingFailed")
    assert fakes.hosting.called("cancel_update") == []
    [(event, payload)] = fakes.notifier.published
    assert event == "build.failed"
    assert payload["failed_step"] == "Train" and payload["failure_reason"] == "ValueError: bad depth (exit code 1)"


def test_a_gate_failure_ends_gate_failed(fakes):
    build = fakes.initialized_build()
    fakes.ledger.begin_step(build.id, "Evaluate")
    out = record_failure(fakes.ports, {"build_id": build.id,
                                       "error": lambda_error("GateFailed", "accuracy 0.6 is below the minimum 0.8")})
    assert out == {"status": "GATE_FAILED", "failed_step": "Evaluate",
                   "reason": "accuracy 0.6 is below the minimum 0.8"}
    assert fakes.notifier.events() == ["build.gate_failed"]


def test_a_failure_during_deploy_cancels_the_update_it_started(fakes):
    serving(fakes, "v0", "wine-v0-aaaaaa")
    build = fakes.initialized_build()
    state = deploy_state(fakes, build)
    out = record_failure(fakes.ports, {"build_id": build.id, "error": {"Error": "States.Timeout", "Cause": ""}})
    assert fakes.hosting.called("cancel_update") == [(EP, state["endpoint_config"])]
    assert out == {"status": "FAILED", "failed_step": "Deploy", "reason": "a step took longer than its timeout"}
    assert fakes.hosting.endpoints[EP]["EndpointConfigName"] == "wine-v0-aaaaaa"
    assert "PendingEndpointConfigName" not in fakes.hosting.endpoints[EP]


def test_a_failure_after_deploy_cancels_nothing(fakes):
    build, state = _deployed(fakes)
    fakes.ledger.begin_step(build.id, "VerifyLive")
    record_failure(fakes.ports, {"build_id": build.id, "error": lambda_error("DeployFailed", "no /ping")})
    assert fakes.hosting.called("cancel_update") == []


def test_the_rollback_outcome_is_appended_to_the_reason(fakes):
    build = fakes.initialized_build()
    fakes.ledger.begin_step(build.id, "VerifyLive")
    fakes.ledger.begin_step(build.id, "RollBack", recovery=True)
    fakes.ledger.end_step(build.id, "RollBack", detail="rolled back automatically to v0, which serves again")
    out = record_failure(fakes.ports, {"build_id": build.id,
                                       "error": lambda_error("SmokeTestFailed", "the smoke invocation failed")})
    assert out == {"status": "FAILED", "failed_step": "VerifyLive",
                   "reason": "the smoke invocation failed; rolled back automatically to v0, which serves again"}


def test_a_failed_rollback_is_appended_to_the_reason(fakes):
    build = fakes.initialized_build()
    fakes.ledger.begin_step(build.id, "VerifyLive")
    fakes.ledger.begin_step(build.id, "RollBack", recovery=True)
    error = {**lambda_error("SmokeTestFailed", "the smoke invocation failed"),
             "rollback": lambda_error("DeployFailed", "the rollback of wine-ep failed: the endpoint is gone")}
    out = record_failure(fakes.ports, {"build_id": build.id, "error": error})
    assert out["reason"] == ("the smoke invocation failed; the automatic rollback failed too: "
                             "the rollback of wine-ep failed: the endpoint is gone")
    assert out["failed_step"] == "VerifyLive"
    assert fakes.ledger.get_build(build.id).error_type == "SmokeTestFailed"


def test_record_failure_without_an_error_still_ends_the_build(fakes):
    build = fakes.initialized_build()
    out = record_failure(fakes.ports, {"build_id": build.id})
    assert out == {"status": "FAILED", "failed_step": None, "reason": "Unknown"}


def test_record_failure_survives_a_failing_notifier(fakes):
    build = fakes.initialized_build()
    fakes.notifier.raises["publish"] = RuntimeError("webhook 500")
    assert record_failure(fakes.ports, {"build_id": build.id, "error": lambda_error("TrainingFailed", "x")})[
        "status"] == "FAILED"
    assert fakes.ledger.get_build(build.id).status == "FAILED"


def test_record_failure_of_a_build_a_user_stopped_keeps_it_stopped_and_says_nothing_more(fakes):
    build = fakes.initialized_build()
    fakes.ledger.begin_step(build.id, "Deploy")
    fakes.ledger.finish_build(build.id, BuildStatus.ABORTED, reason="stopped by a user", error_type="Stopped")
    out = record_failure(fakes.ports, {"build_id": build.id,
                                       "error": lambda_error("BuildEnded", "build 1 already ended (aborted)")})
    assert out == {"status": "ABORTED", "failed_step": "Deploy", "reason": "stopped by a user"}
    assert fakes.notifier.published == []  # the stop already said build.stopped


# -- parse_error --------------------------------------------------------------------------
@pytest.mark.parametrize("error, parsed", [
    (lambda_error("TrainingFailed", "ValueError: bad"), ("TrainingFailed", "ValueError: bad")),
    ({"Error": "Lambda.Unknown", "Cause": json.dumps({"errorType": "MemoryError", "errorMessage": "oom"})},
     ("MemoryError", "oom")),
    ({"Error": "DeployFailed", "Cause": json.dumps({"errorMessage": "gone"})}, ("DeployFailed", "gone")),
    ({"Error": "States.TaskFailed", "Cause": "plain words  "}, ("States.TaskFailed", "plain words")),
    ({"Error": "X", "Cause": json.dumps({"message": "no errorMessage"})}, ("X", '{"message": "no errorMessage"}')),
    ({"Error": "X", "Cause": "[1, 2]"}, ("X", "[1, 2]")),
    ({"Error": "States.Timeout", "Cause": ""}, ("States.Timeout", "a step took longer than its timeout")),
    ({"Error": "States.Timeout"}, ("States.Timeout", "a step took longer than its timeout")),
    ({"Error": "States.Timeout", "Cause": "Task timed out"}, ("States.Timeout", "Task timed out")),
    ({"Error": "States.Runtime", "Cause": None}, ("States.Runtime", "States.Runtime")),
    ({"Error": "Y", "Cause": "   "}, ("Y", "Y")),
    ({}, ("Unknown", "Unknown")),
])
def test_parse_error(error, parsed):
    assert parse_error(error) == parsed


# -- binding ------------------------------------------------------------------------------
def test_bind_handlers_gives_every_step_lambda_shape_over_these_ports(fakes):
    handlers = bind_handlers(fakes.ports)
    assert set(handlers) == set(STEPS)
    assert all(handlers[name].__name__ == STEPS[name].__name__ for name in STEPS)
    build = fakes.running_build()
    assert handlers["initialize"]({"build_id": build.id}, object())["version"] == "v1"
    assert fakes.ledger.get_build(build.id).version == "v1"


# -- the long waits: image build, training, endpoint, rollback ------------------------------
def test_start_image_build_packages_the_source_and_records_the_codebuild_id(fakes):
    build = fakes.initialized_build()
    out = start_image_build(fakes.ports, {"build_id": build.id, "task_token": "token-image"})
    assert out == {"waiting_on": "sagebuild-images:0001", "answered": "running"}
    assert fakes.source.called("package_image_source") == [("src",)]
    assert fakes.images is not None
    assert fakes.images.called("start_build") == [("bucket/image-source/src.zip", "wine-v1")]
    assert wait_state(fakes, build, "image") == {"build": "sagebuild-images:0001", "status": "InProgress",
                                                 "image_uri": "123.dkr.ecr.us-east-1.amazonaws.com/sagebuild:wine-v1"}
    stored = fakes.ledger.get_build(build.id)
    assert stored.image_build == "sagebuild-images:0001" and stored.current_step == "BuildImage"


def test_start_image_build_without_an_image_builder_says_so(tmp_path):
    fakes = Fakes.create(tmp_path, CONFIG, images=False)
    build = fakes.initialized_build()
    with pytest.raises(ConfigError, match="'image.build' is true, but this platform has no image builder"):
        start_image_build(fakes.ports, {"build_id": build.id, "task_token": "token-image"})
    assert fakes.source.calls == []


def test_start_image_build_of_a_stopped_build_starts_nothing(fakes):
    build = fakes.initialized_build()
    fakes.ledger.finish_build(build.id, BuildStatus.ABORTED)
    with pytest.raises(BuildEnded):
        start_image_build(fakes.ports, {"build_id": build.id, "task_token": "token-image"})
    assert fakes.images is not None and fakes.images.calls == []


def test_an_image_build_stopped_while_it_started_is_stopped_at_once(fakes, monkeypatch):
    """A stop between CodeBuild's StartBuild and the ledger write cannot see the build id: the
    step sees the stop after recording it and stops the image build itself."""
    build = fakes.initialized_build()
    images = fakes.images
    assert images is not None
    real_start = images.start_build

    def start_then_user_stops(source: str, tag: str) -> dict[str, str]:
        started = real_start(source, tag)
        fakes.ledger.finish_build(build.id, BuildStatus.ABORTED, reason="stopped by a user")
        return started

    monkeypatch.setattr(images, "start_build", start_then_user_stops)
    with pytest.raises(BuildEnded, match="already ended"):
        start_image_build(fakes.ports, {"build_id": build.id, "task_token": "token-image"})
    assert images.called("stop_build") == [("sagebuild-images:0001",)]
    assert images.builds["sagebuild-images:0001"]["status"] == "Failed"


def _image_state(fakes: Fakes) -> tuple[Build, dict[str, Any]]:
    build = fakes.initialized_build()
    start_image_build(fakes.ports, {"build_id": build.id, "task_token": "token-image"})
    return build, wait_state(fakes, build, "image")


def test_image_build_succeeded_puts_the_image_in_the_snapshot(fakes):
    build, state = _image_state(fakes)
    assert fakes.images is not None
    fakes.images.set_status(state["build"], "Succeeded")
    out = image_build_status(fakes.ports, {"build_id": build.id, "image": state})
    assert out == {**state, "status": "Succeeded"}
    stored = fakes.ledger.get_build(build.id)
    assert stored.config is not None and stored.config["image"]["uri"] == state["image_uri"]
    assert steps_of(fakes, build)["BuildImage"] == ("SUCCEEDED", state["image_uri"])


def test_image_build_failure_raises_with_codebuilds_reason(fakes):
    build, state = _image_state(fakes)
    assert fakes.images is not None
    fakes.images.set_status(state["build"], "Failed", "the image build failed in its BUILD phase: COMMAND_EXECUTION_ERROR")
    with pytest.raises(ImageBuildFailed, match="^the image build failed in its BUILD phase: COMMAND_EXECUTION_ERROR$"):
        image_build_status(fakes.ports, {"build_id": build.id, "image": state})
    fakes.images.builds[state["build"]].pop("reason")
    with pytest.raises(ImageBuildFailed, match="^the image build failed without a reason$"):
        image_build_status(fakes.ports, {"build_id": build.id, "image": state})


def test_an_image_build_in_progress_keeps_waiting(fakes):
    build, state = _image_state(fakes)
    out = image_build_status(fakes.ports, {"build_id": build.id, "image": state})
    assert out == {**state, "status": "InProgress"}
    stored = fakes.ledger.get_build(build.id)
    assert stored.config is not None and stored.config["image"]["uri"] is None


def test_start_training_starts_a_script_mode_job_on_the_packaged_code_and_data(fakes):
    build = fakes.initialized_build()
    out = start_training(fakes.ports, {"build_id": build.id, "task_token": "token-train"})
    name = f"wine-v1-{build.id[:6]}"
    assert out == {"waiting_on": name, "answered": "running"}
    assert wait_state(fakes, build, "training") == {
        "job_name": name, "code": "mem://code/src/sourcedir.tar.gz", "status": "InProgress",
        "data": {"train": {"uri": "mem://data/data/train", "digest": "digest-of-data/train"}}}
    spec = fakes.training.specs[name]
    assert spec["HyperParameters"]["depth"] == "3"
    assert spec["HyperParameters"]["sagemaker_submit_directory"] == "mem://code/src/sourcedir.tar.gz"
    assert spec["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == "mem://data/data/train"
    assert spec["OutputDataConfig"] == {"S3OutputPath": "mem://artifacts/training-jobs"}
    stored = fakes.ledger.get_build(build.id)
    assert stored.training_job == name and stored.current_step == "Train"


def test_start_training_of_a_stopped_build_starts_no_job(fakes):
    build = fakes.initialized_build()
    fakes.ledger.finish_build(build.id, BuildStatus.ABORTED)
    with pytest.raises(BuildEnded):
        start_training(fakes.ports, {"build_id": build.id, "task_token": "token-train"})
    assert fakes.training.jobs == {} and fakes.source.calls == []


def _training_state(fakes: Fakes) -> tuple[Build, dict[str, Any]]:
    build = fakes.initialized_build()
    start_training(fakes.ports, {"build_id": build.id, "task_token": "token-train"})
    return build, wait_state(fakes, build, "training")


def test_completed_training_records_the_artifact_and_metrics(fakes):
    build, state = _training_state(fakes)
    artifact = fakes.training.complete(state["job_name"], {"accuracy": 0.93, "loss": 0.2})
    out = training_status(fakes.ports, {"build_id": build.id, "training": state})
    assert out == {**state, "status": "Completed", "artifact": artifact, "metrics": {"accuracy": 0.93, "loss": 0.2}}
    stored = fakes.ledger.get_build(build.id)
    assert stored.model_artifact == artifact and stored.metrics == {"accuracy": 0.93, "loss": 0.2}
    assert steps_of(fakes, build)["Train"] == ("SUCCEEDED", state["job_name"])


def test_failed_training_raises_the_jobs_failure_reason(fakes):
    build, state = _training_state(fakes)
    fakes.training.fail(state["job_name"], "AlgorithmError: ValueError: bad depth (exit code 1)")
    with pytest.raises(TrainingFailed, match="^AlgorithmError: ValueError: bad depth .exit code 1.$"):
        training_status(fakes.ports, {"build_id": build.id, "training": state})
    fakes.training.jobs[state["job_name"]].pop("FailureReason")
    with pytest.raises(TrainingFailed, match="^the training job failed without a reason$"):
        training_status(fakes.ports, {"build_id": build.id, "training": state})


def test_stopped_training_says_whether_its_max_runtime_stopped_it(fakes):
    build, state = _training_state(fakes)
    fakes.training.set_status(state["job_name"], "Stopped", SecondaryStatus="MaxRuntimeExceeded")
    with pytest.raises(TrainingStopped, match="^training exceeded its max runtime of 120 s and was stopped$"):
        training_status(fakes.ports, {"build_id": build.id, "training": state})
    fakes.training.set_status(state["job_name"], "Stopped", SecondaryStatus="Stopped")
    with pytest.raises(TrainingStopped, match="^training was stopped$"):
        training_status(fakes.ports, {"build_id": build.id, "training": state})


def test_training_in_progress_keeps_waiting(fakes):
    build, state = _training_state(fakes)
    out = training_status(fakes.ports, {"build_id": build.id, "training": state})
    assert out == {**state, "status": "InProgress"}
    assert "Train" in steps_of(fakes, build) and steps_of(fakes, build)["Train"][0] == "RUNNING"


def test_endpoint_in_service_ends_the_deploy_step(fakes):
    build = fakes.initialized_build()
    state = deploy_state(fakes, build)
    out = endpoint_status(fakes.ports, {"build_id": build.id, "deploy": state})
    assert out == {**state, "status": "Creating"}
    fakes.hosting.settle(EP)
    out = endpoint_status(fakes.ports, {"build_id": build.id, "deploy": out})
    assert out == {**state, "status": "InService"}
    assert steps_of(fakes, build)["Deploy"] == ("SUCCEEDED", f"create {EP}")


def test_a_failed_or_vanished_endpoint_fails_the_deploy(fakes):
    build = fakes.initialized_build()
    state = deploy_state(fakes, build)
    fakes.hosting.fail_update(EP, "the container did not pass the ping health check", status="Failed")
    with pytest.raises(DeployFailed, match="^the container did not pass the ping health check$"):
        endpoint_status(fakes.ports, {"build_id": build.id, "deploy": state})
    fakes.hosting.endpoints[EP].pop("FailureReason")
    with pytest.raises(DeployFailed, match="^the endpoint failed to start$"):
        endpoint_status(fakes.ports, {"build_id": build.id, "deploy": state})
    fakes.hosting.endpoints.clear()
    with pytest.raises(DeployFailed, match=f"^endpoint {EP} disappeared during the deployment$"):
        endpoint_status(fakes.ports, {"build_id": build.id, "deploy": state})


# -- roll_back ----------------------------------------------------------------------------
SMOKE = lambda_error("SmokeTestFailed", "the smoke invocation answered HTTP 500: boom")


def _failed_verify(fakes: Fakes, previous: str | None) -> tuple[Build, dict[str, Any]]:
    """A deployed build whose VerifyLive ran, recorded the deployment, and failed its smoke check."""
    build, state = _deployed(fakes, previous=previous)
    fakes.hosting.answer = (500, b"boom")
    with pytest.raises(SmokeTestFailed):
        verify_live(fakes.ports, {"build_id": build.id, "deploy": state, "model": MODEL})
    return build, state


def rolled_back(fakes: Fakes, build: Build, deploy_state: dict[str, Any],
                error: dict[str, Any] | None = SMOKE) -> dict[str, Any]:
    """Run RollBack (its waiting state, as the VerifyLive Catch enters it)."""
    event: dict[str, Any] = {"build_id": build.id, "deploy": deploy_state, "task_token": "token-rollback"}
    if error is not None:
        event["error"] = error
    return roll_back(fakes.ports, event)


def test_roll_back_puts_the_previous_config_back_and_waits_for_it(fakes):
    build, state = _failed_verify(fakes, previous="wine-v0-aaaaaa")
    calls = len(fakes.hosting.calls)
    assert rolled_back(fakes, build, state) == {"waiting_on": EP, "answered": "running"}
    assert wait_state(fakes, build, "rollback") == {"endpoint": EP, "target_config": "wine-v0-aaaaaa",
                                                    "action": "update", "status": "Pending"}
    assert [c for c in fakes.hosting.calls[calls:] if c[0] != "describe_endpoint"] == [
        ("cancel_update", (EP, state["endpoint_config"])), ("update_endpoint", (EP, "wine-v0-aaaaaa", None))]
    [new] = [d for d in fakes.ledger.deployments(endpoint=EP) if d["version"] == "v1"]
    assert new["rolled_back_reason"] == "the smoke invocation answered HTTP 500: boom"
    stored = fakes.ledger.get_build(build.id)
    assert stored.current_step == "VerifyLive"  # a recovery step: the failed step stays the one that failed
    assert steps_of(fakes, build)["RollBack"] == ("RUNNING", None)
    assert fakes.callbacks.heartbeats.count("token-rollback") == 1 and "token-rollback" not in fakes.callbacks.successes


def test_roll_back_of_a_first_model_takes_the_endpoint_down_and_answers_at_once(fakes):
    build, state = _failed_verify(fakes, previous=None)
    assert rolled_back(fakes, build, state) == {"waiting_on": EP, "answered": "succeeded"}
    assert fakes.callbacks.successes["token-rollback"] == {"endpoint": EP, "status": "InService",
                                                           "action": "deleted", "target_config": None}
    assert fakes.hosting.called("delete_endpoint") == [(EP,)] and EP not in fakes.hosting.endpoints
    assert fakes.hosting.called("update_endpoint") == []
    assert steps_of(fakes, build)["RollBack"] == ("SUCCEEDED", "no earlier version existed, so the endpoint was removed")


def test_roll_back_when_the_previous_config_serves_already_changes_nothing(fakes):
    build = fakes.initialized_build()
    serving(fakes, "v0", "wine-v0-aaaaaa")
    state = {"endpoint": EP, "endpoint_config": f"wine-v1-{build.id[:6]}", "previous_config": "wine-v0-aaaaaa",
             "action": "update"}  # the platform rolled the update back itself
    out = rolled_back(fakes, build, state, lambda_error("DeployFailed", "still serves wine-v0-aaaaaa"))
    assert out == {"waiting_on": EP, "answered": "succeeded"}
    answer = fakes.callbacks.successes["token-rollback"]
    assert (answer["action"], answer["target_config"], answer["version"]) == ("none", "wine-v0-aaaaaa", "v0")
    assert fakes.hosting.methods() == ["describe_endpoint", "describe_endpoint"]  # start, then the one check
    assert [d["kind"] for d in fakes.ledger.deployments(endpoint=EP)] == ["build"]
    assert steps_of(fakes, build)["RollBack"] == ("SUCCEEDED", "v0 kept serving")


def test_roll_back_when_the_previous_config_is_named_but_not_in_service_updates(fakes):
    build = fakes.initialized_build()
    serving(fakes, "v0", "wine-v0-aaaaaa")
    fakes.hosting.endpoints[EP]["EndpointStatus"] = "Failed"
    state = {"endpoint": EP, "endpoint_config": f"wine-v1-{build.id[:6]}", "previous_config": "wine-v0-aaaaaa"}
    assert rolled_back(fakes, build, state)["answered"] == "running"
    assert wait_state(fakes, build, "rollback")["action"] == "update"
    assert fakes.hosting.called("update_endpoint") == [(EP, "wine-v0-aaaaaa", None)]


def test_roll_back_with_no_endpoint_left_does_nothing(fakes):
    build = fakes.initialized_build()
    fakes.ledger.begin_step(build.id, "Deploy")
    state = {"endpoint": EP, "endpoint_config": "wine-v1-x", "previous_config": "wine-v0-aaaaaa"}
    assert rolled_back(fakes, build, state) == {"waiting_on": EP, "answered": "succeeded"}
    assert fakes.callbacks.successes["token-rollback"] == {"endpoint": EP, "status": "InService", "action": "none",
                                                           "target_config": None}
    assert fakes.hosting.methods() == ["describe_endpoint"]
    assert steps_of(fakes, build)["RollBack"] == ("SUCCEEDED", "nothing was deployed")


def test_roll_back_without_an_error_marks_the_deployment_with_unknown(fakes):
    build, state = _failed_verify(fakes, previous="wine-v0-aaaaaa")
    rolled_back(fakes, build, state, error=None)
    [new] = [d for d in fakes.ledger.deployments(endpoint=EP) if d["version"] == "v1"]
    assert new["rolled_back_reason"] == "Unknown"


# -- rollback_status ----------------------------------------------------------------------
def _rolling_back(fakes: Fakes) -> tuple[Build, dict[str, Any]]:
    build, state = _failed_verify(fakes, previous="wine-v0-aaaaaa")
    rolled_back(fakes, build, state)
    return build, wait_state(fakes, build, "rollback")


def test_a_finished_rollback_is_recorded_as_an_automatic_one_of_the_earlier_version(fakes):
    build, state = _rolling_back(fakes)
    fakes.hosting.settle(EP)
    assert answer_wait(fakes.ports, "endpoint", EP) == "succeeded"  # the endpoint's InService event
    assert fakes.callbacks.successes["token-rollback"] == {**state, "status": "InService", "version": "v0"}
    live = fakes.ledger.live_deployment(EP)
    assert live is not None
    assert (live["version"], live["endpoint_config"], live["kind"], live["build_id"]) == (
        "v0", "wine-v0-aaaaaa", "auto-rollback", build.id)
    assert steps_of(fakes, build)["RollBack"] == ("SUCCEEDED", "rolled back automatically to v0, which serves again")
    record_failure(fakes.ports, {"build_id": build.id, "error": SMOKE})
    assert fakes.ledger.get_build(build.id).failure_reason == (
        "the smoke invocation answered HTTP 500: boom; rolled back automatically to v0, which serves again")


def test_a_rollback_to_a_config_the_registry_does_not_know_names_the_config(fakes):
    build = fakes.initialized_build()
    fakes.hosting.put_endpoint(EP, "hand-made-config")
    state = {"endpoint": EP, "target_config": "hand-made-config", "action": "update", "status": "Pending"}
    out = rollback_status(fakes.ports, {"build_id": build.id, "rollback": state})
    assert out["version"] == "hand-made-config"


def test_a_rollback_that_changed_nothing_records_no_deployment(fakes):
    build = fakes.initialized_build()
    serving(fakes, "v0", "wine-v0-aaaaaa")
    fakes.ledger.begin_step(build.id, "RollBack", recovery=True)
    state = {"endpoint": EP, "target_config": "wine-v0-aaaaaa", "action": "none", "status": "Pending"}
    out = rollback_status(fakes.ports, {"build_id": build.id, "rollback": state})
    assert out["status"] == "InService" and out["version"] == "v0"
    assert [d["kind"] for d in fakes.ledger.deployments(endpoint=EP)] == ["build"]
    assert steps_of(fakes, build)["RollBack"] == ("SUCCEEDED", "v0 kept serving")


@pytest.mark.parametrize("action, target, detail", [
    ("deleted", None, "no earlier version existed, so the endpoint was removed"),
    ("none", None, "nothing was deployed"),
])
def test_a_rollback_with_nothing_to_wait_for_ends_at_once(fakes, action, target, detail):
    build = fakes.initialized_build()
    fakes.ledger.begin_step(build.id, "RollBack", recovery=True)
    state = {"endpoint": EP, "target_config": target, "action": action, "status": "Pending"}
    out = rollback_status(fakes.ports, {"build_id": build.id, "rollback": state})
    assert out == {**state, "status": "InService"}
    assert steps_of(fakes, build)["RollBack"] == ("SUCCEEDED", detail)
    assert fakes.hosting.calls == []


def test_a_rollback_still_updating_keeps_waiting(fakes):
    build, state = _rolling_back(fakes)
    out = rollback_status(fakes.ports, {"build_id": build.id, "rollback": state})
    assert out == {**state, "status": "Updating"}
    fakes.hosting.endpoints[EP]["EndpointStatus"] = "InService"  # InService, but the swap is still pending
    out = rollback_status(fakes.ports, {"build_id": build.id, "rollback": state})
    assert out == {**state, "status": "Updating"}  # mid-swap: not the InService the waiting state ends on
    assert answer_wait(fakes.ports, "endpoint", EP) == "running"
    live = fakes.ledger.live_deployment(EP)
    assert live is not None and live["version"] == "v1" and "token-rollback" not in fakes.callbacks.successes
    live = fakes.ledger.live_deployment(EP)
    assert live is not None and live["version"] == "v1"


def test_a_failed_rollback_raises_why(fakes):
    build, state = _rolling_back(fakes)
    fakes.hosting.fail_update(EP, "the old container did not start", status="Failed")
    with pytest.raises(DeployFailed, match=f"^the rollback of {EP} failed: the old container did not start$"):
        rollback_status(fakes.ports, {"build_id": build.id, "rollback": state})


def test_a_rollback_whose_endpoint_is_gone_raises(fakes):
    build, state = _rolling_back(fakes)
    fakes.hosting.endpoints.clear()
    with pytest.raises(DeployFailed, match=f"^the rollback of {EP} failed: the endpoint is gone$"):
        rollback_status(fakes.ports, {"build_id": build.id, "rollback": state})


def test_a_rollback_that_did_not_take_names_what_serves(fakes):
    build, state = _rolling_back(fakes)
    fakes.hosting.fail_update(EP, "update to wine-v0-aaaaaa failed and was rolled back")
    with pytest.raises(DeployFailed) as err:
        rollback_status(fakes.ports, {"build_id": build.id, "rollback": state})
    assert str(err.value) == (f"the rollback of {EP} did not take: it serves wine-v1-{build.id[:6]}: "
                              "update to wine-v0-aaaaaa failed and was rolled back")
