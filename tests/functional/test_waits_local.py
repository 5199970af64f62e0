"""Event-driven waits in the local engine (in process, the wine sample): the training platform's
process exit and the hosting platform's ready transition answer the waiting states; a dropped
event costs one heartbeat; a duplicate changes nothing; stop during the endpoint wait."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from lambda_pipeline.steps import answer_wait, waits
from tests.helpers import edit_config

HAPPY_PATH = ["Initialize", "Train", "Evaluate", "Register", "Deploy", "VerifyLive", "NotifySuccess"]


@pytest.fixture
def service(project: Path) -> Iterator[Any]:
    from infrastructure.local.service import LocalService
    edit_config(project, triggers={"coalesce_seconds": 0}, polling={"heartbeat_seconds": 1})
    running = LocalService(str(project), grace_seconds=1.0)
    running.start()
    try:
        yield running
    finally:
        running.close()


def ended(service: Any, number: int, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (build := service.builds.get(number)).done:
        assert time.monotonic() < deadline, f"build {number} still {build.status} at {build.current_step}"
        time.sleep(0.05)
    return build


def entered(service: Any, build: Any) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in service.engine.history(build.execution_arn)
            if e["type"].endswith("StateEntered")]


def test_events_answer_the_waits_and_duplicates_change_nothing(service):
    edit_config(Path(service.paths.project), polling={"heartbeat_seconds": 120})  # longer than the build
    build = ended(service, service.builds.start("events", source="cli").number)
    assert build.status == "SUCCEEDED", build.failure_reason
    assert entered(service, build) == HAPPY_PATH  # no recheck, no polling: the platforms' events answered
    steps = service.ports.ledger.get_build(build.id).steps
    assert answer_wait(service.ports, "training", build.training_job) == "duplicate"
    assert answer_wait(service.ports, "endpoint", build.endpoint_name) == "duplicate"
    assert service.ports.ledger.get_build(build.id).steps == steps
    assert [d["version"] for d in service.ports.ledger.deployments(endpoint=build.endpoint_name)] == ["v1"]


def test_a_dropped_training_event_still_finishes_through_the_heartbeat(service):
    service.training.events.drop = lambda kind, name: kind == "training"
    build = ended(service, service.builds.start("event lost", source="cli").number)
    assert build.status == "SUCCEEDED", build.failure_reason
    assert service.training.events.dropped == 1
    states = entered(service, build)
    assert "TrainRecheck" in states and states[-1] == "NotifySuccess"
    assert states.count("TrainRecheck") <= 30  # one per heartbeat while training runs, never a hung build


def test_stop_during_the_endpoint_wait_stops_the_execution_and_keeps_the_ledger_aborted(service):
    service.hosting.events.drop = lambda kind, name: True  # the endpoint seems to take its time
    edit_config(Path(service.paths.project), polling={"heartbeat_seconds": 300})
    number = service.builds.start("stopped while deploying", source="cli").number
    deadline = time.monotonic() + 60
    while not ((b := service.builds.get(number)).id and (r := waits.current(service.ports, b.id, "deploy"))
               and r["status"] == "waiting"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    stopped = service.builds.stop(number)
    assert stopped.status == "ABORTED"
    assert service.engine.describe(stopped.execution_arn)["status"] == "ABORTED"
    service.hosting.events.drop = lambda kind, name: False
    assert answer_wait(service.ports, "endpoint", r["name"]) == "failed"  # the late event wakes the stopped wait
    time.sleep(0.3)
    assert entered(service, stopped)[-1] == "Deploy"  # nothing ran after the stop
    assert service.builds.get(number).status == "ABORTED"


def test_stop_during_the_rollback_wait_keeps_the_build_aborted_and_runs_nothing_after(service):
    edit_config(Path(service.paths.project), polling={"heartbeat_seconds": 300})
    first = ended(service, service.builds.start("v1", source="cli").number)
    assert first.status == "SUCCEEDED", first.failure_reason
    # v2's smoke check fails, so it rolls back to v1; the rollback's InService event is lost
    edit_config(Path(service.paths.project), deploy={"sample_payload": "not,a,wine", "sample_content_type": "text/csv"})

    def rolling_back(kind: str, name: str) -> bool:
        return any(waits.current(service.ports, b.id, "rollback") for b in
                   service.ports.ledger.list_builds(5, statuses=("RUNNING",)))
    service.hosting.events.drop = rolling_back
    number = service.builds.start("v2", source="cli").number
    deadline = time.monotonic() + 90
    while not ((b := service.builds.get(number)).id and (r := waits.current(service.ports, b.id, "rollback"))
               and r["status"] == "waiting"):
        assert time.monotonic() < deadline and not b.done, b.failure_reason
        time.sleep(0.05)
    stopped = service.builds.stop(number)
    assert stopped.status == "ABORTED"
    service.hosting.events.drop = lambda kind, name: False
    answer_wait(service.ports, "endpoint", r["name"])  # the late event: wakes the stopped wait
    time.sleep(0.3)
    assert entered(service, stopped)[-1] == "RollBack"  # RecordFailure did not run after the stop
    assert service.builds.get(number).status == "ABORTED"
    deadline = time.monotonic() + 30  # the endpoint's own switch back to v1 goes on
    while (service.hosting.describe_endpoint(first.endpoint_name) or {}).get("EndpointConfigName") != first.endpoint_config:
        assert time.monotonic() < deadline
        time.sleep(0.1)
