"""BuildService.stop over fake ports: what a stop stops at each step (the image build, the training
job, the endpoint update, the execution), in which order, and that the live model stays."""
from __future__ import annotations

from typing import Any

import pytest

from lambda_pipeline.build_service import BuildService
from lambda_pipeline.errors import NothingToStop, NotFound
from lambda_pipeline.model import Build
from lambda_pipeline.steps import waits
from lambda_pipeline.steps.handlers import (answer_wait, deploy, initialize, record_failure, start_image_build,
                                            start_training)
from tests.unit.fakes import Fakes

CONFIG: dict[str, Any] = {"pipeline": "wine", "image": {"build": True}, "deploy": {"endpoint": "wine-ep"}}


@pytest.fixture
def fakes(tmp_path) -> Fakes:
    return Fakes.create(tmp_path, CONFIG)


@pytest.fixture
def service(fakes) -> BuildService:
    return BuildService(fakes.ports, fakes.executor)


def started(fakes: Fakes, service: BuildService) -> Build:
    """A build the service launched, through Initialize (as the state machine runs it)."""
    build = service.start("new Dockerfile")
    assert build.status == "RUNNING" and build.execution_arn in fakes.executor.executions
    initialize(fakes.ports, {"build_id": build.id})
    return build


def image_build_of(fakes: Fakes, build: Build) -> str:
    record = waits.current(fakes.ports, build.id, "image")
    assert record is not None
    return str(record["name"])


def test_a_stop_during_the_image_build_records_aborted_then_stops_the_execution_then_the_image_build(
        fakes, service):
    build = started(fakes, service)
    start_image_build(fakes.ports, {"build_id": build.id, "task_token": "token-image"})
    image = {"build": image_build_of(fakes, build)}
    assert fakes.ledger.get_build(build.id).image_build == image["build"] == "sagebuild-images:0001"
    del fakes.journal[:]
    done = service.stop()
    assert done.status == "ABORTED" and done.failed_step == "BuildImage" and done.failure_reason == "stopped by a user"
    assert fakes.images is not None and fakes.images.called("stop_build") == [(image["build"],)]
    assert fakes.images.builds[image["build"]]["status"] == "Failed"
    assert fakes.executor.executions[build.execution_arn]["status"] == "ABORTED"
    assert [c for c in fakes.journal if c in ("images.stop_build", "executor.stop", "notifier.publish")] == [
        "executor.stop", "images.stop_build", "notifier.publish"]
    assert fakes.executor.status_at_stop[build.execution_arn] == "ABORTED"  # the ledger first
    assert fakes.training.calls == [] and fakes.hosting.calls == []
    assert [e for e, _ in fakes.notifier.published] == ["build.started", "build.stopped"]


def test_a_stop_during_training_leaves_the_finished_image_build_alone(fakes, service):
    build = started(fakes, service)
    start_image_build(fakes.ports, {"build_id": build.id, "task_token": "token-image"})
    assert fakes.images is not None
    fakes.images.set_status(image_build_of(fakes, build), "Succeeded")
    assert answer_wait(fakes.ports, "image", image_build_of(fakes, build)) == "succeeded"
    job = start_training(fakes.ports, {"build_id": build.id, "task_token": "token-train"})["waiting_on"]
    done = service.stop(build.number)
    assert done.status == "ABORTED" and done.failed_step == "Train"
    assert fakes.images.called("stop_build") == []
    assert fakes.training.called("stop_training_job") == [(job,)]
    assert fakes.training.jobs[job]["TrainingJobStatus"] == "Stopped"
    assert fakes.journal.index("executor.stop") < fakes.journal.index("training.stop_training_job")


def test_the_stopped_jobs_end_wakes_its_waiting_state_and_changes_nothing(fakes, service):
    build = started(fakes, service)
    start_image_build(fakes.ports, {"build_id": build.id, "task_token": "token-image"})
    image = image_build_of(fakes, build)
    service.stop()
    # CodeBuild's STOPPED event arrives after the stop: the (ended) execution's token gets BuildEnded.
    assert answer_wait(fakes.ports, "image", image) == "failed"
    assert fakes.callbacks.failures["token-image"] == ("BuildEnded", "build 1 already ended")
    stored = fakes.ledger.get_build(build.id)
    assert stored.status == "ABORTED" and stored.failure_reason == "stopped by a user"
    assert stored.config is not None and stored.config["image"]["uri"] is None
    # Had the execution still run, its Catch would reach RecordFailure: the stop's end stands, told once.
    out = record_failure(fakes.ports, {"build_id": build.id, "error": {"Error": "BuildEnded"}})
    assert out == {"status": "ABORTED", "failed_step": "BuildImage", "reason": "stopped by a user"}
    assert [e for e, _ in fakes.notifier.published] == ["build.started", "build.stopped"]


def test_an_image_build_that_cannot_be_stopped_does_not_keep_the_build_running(fakes, service, caplog):
    build = started(fakes, service)
    start_image_build(fakes.ports, {"build_id": build.id, "task_token": "token-image"})
    assert fakes.images is not None
    fakes.images.raises["stop_build"] = NotFound("no image build 'sagebuild-images:0001'")
    done = service.stop()
    assert done.status == "ABORTED"
    assert fakes.executor.executions[build.execution_arn]["status"] == "ABORTED"
    assert any(r.message == "could not stop the image build" for r in caplog.records)


def test_a_stop_during_deploy_cancels_the_update_and_the_live_model_stays(fakes, service):
    fakes.ledger.record_deployment("wine-ep", "v0", "wine-v0-aaaaaa", None)
    fakes.hosting.put_endpoint("wine-ep", "wine-v0-aaaaaa")
    build = started(fakes, service)
    start_image_build(fakes.ports, {"build_id": build.id, "task_token": "token-image"})
    assert fakes.images is not None
    fakes.images.set_status(image_build_of(fakes, build), "Succeeded")
    assert answer_wait(fakes.ports, "image", image_build_of(fakes, build)) == "succeeded"
    fakes.ledger.update_build(build.id, training_job="wine-v1-job")
    fakes.training.jobs["wine-v1-job"] = {"TrainingJobName": "wine-v1-job", "TrainingJobStatus": "Completed"}
    deploy(fakes.ports, {"build_id": build.id, "task_token": "token-deploy",
                         "model": {"version": "v1", "model_name": "wine-v1", "artifact": "mem://m.tar.gz", "code": None}})
    record = waits.current(fakes.ports, build.id, "deploy")
    assert record is not None
    state = record["state"]
    done = service.stop()
    assert done.status == "ABORTED" and done.failed_step == "Deploy"
    assert fakes.hosting.called("cancel_update") == [("wine-ep", state["endpoint_config"])]
    assert fakes.hosting.endpoints["wine-ep"]["EndpointConfigName"] == "wine-v0-aaaaaa"
    assert fakes.images is not None and fakes.images.called("stop_build") == []
    live = fakes.ledger.live_deployment("wine-ep")
    assert live is not None and live["version"] == "v0"


def test_a_queued_build_is_stopped_without_touching_any_platform(fakes, service):
    running = started(fakes, service)
    queued = service.start("second")
    assert queued.status == "QUEUED"
    done = service.stop(queued.number)
    assert done.status == "ABORTED" and done.failed_step is None
    assert fakes.executor.called("stop") == [] and fakes.training.calls == []
    assert fakes.ledger.get_build(running.id).status == "RUNNING"


def test_a_build_that_ended_cannot_be_stopped(fakes, service):
    build = started(fakes, service)
    service.stop()
    with pytest.raises(NothingToStop, match="build 1 already ended .aborted."):
        service.stop(build.id)
    assert len(fakes.executor.called("stop")) == 1


def test_an_image_build_recorded_while_the_stop_began_is_stopped_too(fakes, service, monkeypatch):
    """The stop reads the build, then StartImageBuild records its CodeBuild id, then the stop
    records ABORTED: the stop works from the ledger as it is after ABORTED, so it sees the id."""
    build = started(fakes, service)
    fakes.ledger.begin_step(build.id, "BuildImage")
    real_finish = fakes.ledger.finish_build

    def handler_records_first(build_id: str, status: str, reason: str | None = None,
                              error_type: str | None = None) -> Build:
        fakes.ledger.update_build(build_id, image_build="sagebuild-images:0042")
        return real_finish(build_id, status, reason, error_type)

    monkeypatch.setattr(fakes.ledger, "finish_build", handler_records_first)
    assert fakes.images is not None
    fakes.images.builds["sagebuild-images:0042"] = {"status": "InProgress"}
    done = service.stop()
    assert done.status == "ABORTED"
    assert fakes.images.called("stop_build") == [("sagebuild-images:0042",)]
