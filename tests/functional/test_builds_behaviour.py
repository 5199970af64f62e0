"""One behaviour suite for the Builds port: the same tests against the local engine (in process:
the embedded interpreter, SQLite, real training subprocesses) and against the AWS adapters in the
simulated account (moto's Step Functions, DynamoDB, SSM, SNS -> SQS).

Both adapters are the one build service over an executor; these tests hold them to the same
rules: start, queue, refuse, coalesce, concurrent starts, stop, execution-ended reconcile and
duplicate end events, and the same reasons and notifications.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import pytest
from botocore.stub import Stubber

from lambda_pipeline.build_service import execution_name
from lambda_pipeline.errors import AlreadyRunning, NothingToStop, NotRetryable
from tests.helpers import edit_config, marked_processes

SLOW = "import time\nprint('epoch 1', flush=True)\ntime.sleep(600)\n"


@dataclasses.dataclass
class Backend:
    """What a test needs of one backend, whatever it runs on."""

    name: str
    ports: Any
    state_machine_arn: str
    new_builds: Callable[[], Any]  # a Builds with its own adapters and clients (a Lambda, a process)
    set_config: Callable[..., None]  # merge keys into config sections
    notifications: Callable[[], list[tuple[str, dict[str, Any]]]]
    make_slow: Callable[[], None]  # training then takes minutes (a build stays RUNNING)
    stop_context: Callable[[Any], Any]  # wraps a stop (AWS: moto lacks StopTrainingJob -> Stubber)

    def builds(self) -> Any:
        return self.new_builds()

    def a_running_build(self) -> Any:
        """A build the ledger holds as RUNNING with the launch slot, as a launch leaves it."""
        ledger = self.ports.ledger
        build = ledger.create_build("p", "api", "already running")
        arn = f"{self.state_machine_arn.replace(':stateMachine:', ':execution:')}:{execution_name(build)}"
        ledger.update_build(build.id, status="RUNNING", started_at=time.time(), execution_arn=arn)
        ledger.set_state("launch-slot", build.id)
        return ledger.get_build(build.id)

    def wait_done(self, build_id: str, timeout: float = 60) -> Any:
        return wait_for(lambda: (b := self.ports.ledger.get_build(build_id)).done and b, timeout)


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


@contextlib.contextmanager
def local_backend(template: Path, folder: Path) -> Iterator[Backend]:
    from infrastructure.local.builds import EngineBuilds
    from infrastructure.local.service import LocalService
    from lambda_pipeline.adapters.local import SqliteLedger
    from lambda_pipeline.definition import LOCAL_ACCOUNT, LOCAL_REGION

    project = folder / "wine"
    shutil.copytree(template, project)
    edit_config(project, triggers={"coalesce_seconds": 0})
    service = LocalService(str(project), grace_seconds=1.0)
    service.start()

    def new_builds() -> Any:
        ports = dataclasses.replace(service.ports, ledger=SqliteLedger(str(service.paths.ledger)))
        return EngineBuilds(service.engine, ports)

    def make_slow() -> None:
        (project / "model" / "slow.py").write_text(SLOW)
        edit_config(project, training={"entry_point": "slow.py"})

    def set_config(**sections: dict[str, Any]) -> None:
        edit_config(project, **sections)

    def notifications() -> list[tuple[str, dict[str, Any]]]:
        return list(service.notifier.events)

    try:
        yield Backend("local", service.ports, f"arn:aws:states:{LOCAL_REGION}:{LOCAL_ACCOUNT}:stateMachine:sagebuild-build",
                      new_builds, set_config, notifications, make_slow, lambda builds: contextlib.nullcontext())
    finally:
        service.close()
        deadline = time.monotonic() + 10
        while marked_processes(project) and time.monotonic() < deadline:
            time.sleep(0.1)


@contextlib.contextmanager
def aws_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    from lambda_pipeline import lambda_entry
    from lambda_pipeline.adapters.aws import SageMakerTraining
    from lambda_pipeline.adapters.aws.sfn_builds import StepFunctionsBuilds
    from tests.functional import aws_sim

    with aws_sim.simulated_account(monkeypatch) as (engine, arn, ports, sqs, queue, ssm):
        current = {**aws_sim.config()}
        sagemaker = boto3.client("sagemaker", region_name=aws_sim.REGION)
        stubbed = dataclasses.replace(ports, training=SageMakerTraining(aws_sim.ROLE, aws_sim.IMAGE,
                                                                        boto3_client=sagemaker))

        def set_config(**sections: dict[str, Any]) -> None:
            for section, values in sections.items():
                current[section] = {**current.get(section, {}), **values}
            ssm.put_parameter(Name="/sagebuild/sim/config", Type="String", Overwrite=True, Value=json.dumps(current))

        def make_slow() -> None:  # the training job runs until its (never sent) event
            aws_sim.held_training(ports)

        seen: list[tuple[str, dict[str, Any]]] = []

        def notifications() -> list[tuple[str, dict[str, Any]]]:
            seen.extend((n["event"], n["payload"]) for n in aws_sim.notifications(sqs, queue))
            return list(seen)

        @contextlib.contextmanager
        def stop_context(build: Any) -> Iterator[None]:
            with Stubber(sagemaker) as stubber:  # moto has no StopTrainingJob: the request is checked
                if build is not None and build.training_job:
                    stubber.add_response("stop_training_job", {}, {"TrainingJobName": build.training_job})
                yield
                stubber.assert_no_pending_responses()

        def new_builds() -> Any:
            return StepFunctionsBuilds(dataclasses.replace(lambda_entry.ports_from_environment(),
                                                           training=stubbed.training), arn)

        yield Backend("aws", stubbed, arn, new_builds, set_config, notifications, make_slow, stop_context)


@pytest.fixture(params=["local", "aws"])
def backend(request: pytest.FixtureRequest, sample_template: Path, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    factory = (lambda: local_backend(sample_template, tmp_path)) if request.param == "local" \
        else (lambda: aws_backend(monkeypatch))
    with factory() as found:
        yield found


def starts_at_once(backend: Backend, count: int, start: Callable[[Any, int], Any]) -> list[Any]:
    """``count`` callers starting at the same moment, each with its own adapters (Lambdas on AWS;
    the API, the CLI and a git hook locally). Returns the results in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[Exception] = []
    builds = [backend.builds() for _ in range(count)]

    def one(i: int) -> None:
        barrier.wait()
        try:
            results[i] = start(builds[i], i)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


# -- the behaviour, on both -------------------------------------------------------------------
def test_a_started_build_runs_to_success_and_people_hear_it_started_and_ended(backend):
    builds = backend.builds()
    build = builds.start("asked by voice", source="voice", hyperparameters={"n-estimators": 7})
    assert build.status == "RUNNING" and build.execution_arn.endswith(f":build-1-{build.id}")
    done = backend.wait_done(build.id)
    assert done.status == "SUCCEEDED" and done.version == "v1"
    assert done.config["training"]["hyperparameters"]["n-estimators"] == 7  # the snapshot it ran with
    wait_for(lambda: [e for e, _ in backend.notifications()].count("build.succeeded") == 1, 10)
    assert [(e, p["build_number"]) for e, p in backend.notifications()] == [("build.started", 1),
                                                                             ("build.succeeded", 1)]


def test_builds_queue_behind_the_running_one_and_start_when_its_execution_ends(backend):
    backend.make_slow()
    builds = backend.builds()
    running = backend.a_running_build()
    queued = builds.start("a person asked")
    assert queued.status == "QUEUED"
    again = builds.start("another person asked")
    assert again.status == "QUEUED" and again.id != queued.id  # people's starts are their own builds
    ended = builds.execution_ended(running.execution_arn, "ABORTED", cause="aborted in the console")
    assert ended.number == running.number and ended.status == "ABORTED"
    assert ended.failure_reason == "aborted in the console"
    assert backend.ports.ledger.get_build(queued.id).status == "RUNNING"  # oldest first
    assert backend.ports.ledger.get_build(again.id).status == "QUEUED"
    # EventBridge may deliver twice, and the monitor may see the end too: the first record stands.
    assert builds.execution_ended(running.execution_arn, "ABORTED") is None
    builds.stop(again.number)
    wait_for(lambda: backend.ports.ledger.get_build(queued.id).training_job)
    with backend.stop_context(backend.ports.ledger.get_build(queued.id)):
        builds.stop(queued.number)
    assert [(e, p["build_number"]) for e, p in backend.notifications()] == [
        ("build.stopped", running.number), ("build.started", queued.number), ("build.stopped", again.number),
        ("build.stopped", queued.number)]


def test_of_six_starts_at_the_same_moment_exactly_one_runs(backend):
    backend.make_slow()
    results = starts_at_once(backend, 6, lambda builds, i: builds.start(f"person {i}").status)
    # Whoever wins the launch slot launches the oldest queued build, which may be another caller's:
    # that caller may have read its build as QUEUED a moment before. The ledger is the truth.
    assert set(results) <= {"QUEUED", "RUNNING"} and results.count("RUNNING") <= 1
    statuses = [b.status for b in backend.ports.ledger.list_builds(10)]
    assert statuses.count("RUNNING") == 1 and statuses.count("QUEUED") == 5
    assert [e for e, _ in backend.notifications()].count("build.started") == 1
    running = next(b for b in backend.ports.ledger.list_builds(10) if b.status == "RUNNING")
    wait_for(lambda: backend.ports.ledger.get_build(running.id).training_job)
    with backend.stop_context(backend.ports.ledger.get_build(running.id)):
        backend.builds().stop(running.number)


def test_six_automatic_triggers_at_once_share_one_queued_build_naming_them_all(backend):
    running = backend.a_running_build()
    ids = starts_at_once(backend, 6, lambda builds, i: builds.submit_triggers(
        [{"source": "data", "reason": f"new data: file {i}"}]).id)
    assert len(set(ids)) == 1
    queued = backend.ports.ledger.get_build(ids[0])
    assert queued.status == "QUEUED" and queued.id != running.id
    assert sorted(t["reason"] for t in backend.ports.ledger.triggers_of(queued.id)) == [
        f"new data: file {i}" for i in range(6)]
    assert queued.reason.startswith("6 triggers: data: new data: file ") and queued.reason.endswith("; and 3 more")
    assert [b.status for b in backend.ports.ledger.list_builds(10)].count("QUEUED") == 1


def test_a_refusing_pipeline_refuses_people_but_queues_automatic_triggers(backend):
    backend.set_config(builds={"when_running": "refuse"})
    builds = backend.builds()
    running = backend.a_running_build()
    with pytest.raises(AlreadyRunning, match=f"build {running.number} is still running"):
        builds.start("a person asked")
    assert builds.submit_triggers([{"source": "schedule", "reason": "nightly"}]).status == "QUEUED"
    assert len(backend.ports.ledger.list_builds(10)) == 2  # the refused start left nothing behind


def test_stop_ends_the_build_its_training_job_and_execution_and_the_live_model_stays(backend):
    backend.make_slow()
    builds = backend.builds()
    build = builds.start("to be stopped")
    job = wait_for(lambda: backend.ports.ledger.get_build(build.id).training_job)
    with backend.stop_context(backend.ports.ledger.get_build(build.id)):
        stopped = builds.stop()
    assert stopped.status == "ABORTED" and stopped.failure_reason == "stopped by a user"
    assert stopped.failed_step == "Train"
    if backend.name == "local":
        assert backend.ports.training.describe_training_job(job)["TrainingJobStatus"] == "Stopped"
    assert backend.ports.ledger.live_deployment("sim-endpoint" if backend.name == "aws" else "wine-classifier") is None
    with pytest.raises(NothingToStop, match="no build is running or queued"):
        builds.stop()
    with pytest.raises(NothingToStop, match=f"build {build.number} already ended"):
        builds.stop(build.number)
    assert [e for e, _ in backend.notifications()] == ["build.started", "build.stopped"]


def test_a_build_left_queued_by_a_missed_end_starts_first(backend):
    builds = backend.builds()
    ended = backend.a_running_build()
    left = backend.ports.ledger.create_build("p", "data", "queued while it was ending")
    backend.ports.ledger.finish_build(ended.id, "SUCCEEDED")
    newer = builds.start("a person asked")
    assert backend.ports.ledger.get_build(left.id).status == "RUNNING"
    assert newer.status == "QUEUED"
    backend.wait_done(left.id)


def test_a_broken_config_gives_a_failed_build_that_keeps_its_triggers_and_tells_people(backend):
    builds = backend.builds()
    backend.set_config(builds={"when_running": "sometimes"})
    build = builds.submit_triggers([{"source": "schedule", "reason": "nightly"}])
    assert build.status == "FAILED" and build.failure_reason.startswith("the build could not start:")
    assert "builds.when_running" in build.failure_reason
    assert [t["reason"] for t in backend.ports.ledger.triggers_of(build.id)] == ["nightly"]
    assert [e for e, _ in backend.notifications()] == ["build.failed"]


def test_an_execution_that_ended_unrecorded_is_recorded_once_and_people_are_told_once(backend):
    builds = backend.builds()
    running = backend.a_running_build()
    for _ in range(3):  # duplicate deliveries
        builds.execution_ended(running.execution_arn, "FAILED", cause="Lambda.Unknown: out of memory",
                               error="Lambda.Unknown")
    done = backend.ports.ledger.get_build(running.id)
    assert done.status == "FAILED" and done.failure_reason == "Lambda.Unknown: out of memory"
    assert done.error_type == "Lambda.Unknown"
    assert [e for e, _ in backend.notifications()] == ["build.failed"]


# -- identical on both ------------------------------------------------------------------------
def scenario(backend: Backend) -> dict[str, Any]:
    """Coalesce, stop and an unrecorded end: what people see of it (reasons, notifications)."""
    builds = backend.builds()
    running = backend.a_running_build()
    queued = builds.submit_triggers([{"source": "data", "reason": "new rows"}, {"source": "git", "reason": "push"}])
    joined = builds.submit_triggers([{"source": "schedule", "reason": "nightly"}])
    builds.stop(queued.number)
    builds.execution_ended(running.execution_arn, "TIMED_OUT", cause="the build took too long", error="States.Timeout")
    builds.execution_ended(running.execution_arn, "TIMED_OUT")
    wait_for(lambda: len(backend.notifications()) >= 2, 10)
    time.sleep(0.2)
    keep = ("build_number", "status", "reason", "failure_reason", "trigger_source", "failed_step")
    return {"queued_reason": joined.reason, "same_build": joined.id == queued.id,
            "notifications": [(e, {k: p[k] for k in keep}) for e, p in backend.notifications()]}


def test_the_coalesced_reason_and_the_notifications_are_identical_on_both(sample_template, tmp_path, monkeypatch):
    with local_backend(sample_template, tmp_path) as local:
        seen_locally = scenario(local)
    with aws_backend(monkeypatch) as aws:
        seen_on_aws = scenario(aws)
    assert seen_locally == seen_on_aws
    assert seen_locally["same_build"]
    assert seen_locally["queued_reason"] == "3 triggers: data: new rows; git: push; schedule: nightly"
    assert [e for e, _ in seen_locally["notifications"]] == ["build.stopped", "build.failed"]
    assert seen_locally["notifications"][1][1]["failure_reason"] == "the build took too long"


# -- retry --------------------------------------------------------------------------------------
def test_a_build_that_failed_after_training_is_retried_from_deploy_without_training_again(sample_template, tmp_path):
    import socket
    with local_backend(sample_template, tmp_path) as backend:
        taken = socket.socket()  # another program holds the endpoint's port: a transient failure
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        backend.set_config(deploy={"port": taken.getsockname()[1]})
        builds = backend.builds()
        first = backend.wait_done(builds.start("port taken").id)
        assert first.status == "FAILED" and first.failed_step == "Deploy" and first.attempt == 1
        taken.close()
        backend.set_config(training={"entry_point": "missing.py"})  # a retry runs the build's own snapshot
        from sagebuild.client import SageBuild
        again = SageBuild(builds, None).retry(first.number)  # the notebook's way; the CLI's is tested end to end
        assert (again.number, again.status, again.attempt, again.current_step) == (first.number, "RUNNING", 2, "Deploy")
        assert repr(again).startswith(f"<Build #{first.number} RUNNING (attempt 2)")
        done = backend.wait_done(again.id)
        assert done.status == "SUCCEEDED" and done.failure_reason is None and done.attempt == 2
        assert done.training_job == first.training_job and done.version == "v1"  # trained once
        assert backend.ports.training.active_jobs() == set()
        assert len(list((Path(backend.ports.training.root)).iterdir())) == 1  # one training job folder
        train = next(s for s in done.steps if s.name == "Train")
        assert train.ended_at == next(s for s in first.steps if s.name == "Train").ended_at  # its record kept
        assert [s.name for s in done.steps] == ["Initialize", "Train", "Evaluate", "Register", "Deploy", "VerifyLive",
                                               "Notify"]
        assert all(s.status == "SUCCEEDED" for s in done.steps)
        shown = builds.get(first.number)
        assert [(r["kind"], r["from"], r["attempt"]) for r in shown.runs] == [("retry", "Deploy", 2)]
        wait_for(lambda: len(backend.notifications()) >= 3, 10)  # the notifier delivers in its own thread
        assert [e for e, _ in backend.notifications()] == ["build.started", "build.failed", "build.succeeded"]
        assert backend.ports.ledger.live_deployment("wine-classifier")["build_id"] == first.id


def test_what_cannot_be_retried_says_why(backend):
    builds = backend.builds()
    ledger = backend.ports.ledger
    judged = ledger.create_build("p", "cli", "judged")
    ledger.update_build(judged.id, config={"image": {"build": False}})
    ledger.finish_build(judged.id, "GATE_FAILED", reason="validation:accuracy 0.5 < 0.85", error_type="GateFailed")
    with pytest.raises(NotRetryable, match=f"build {judged.number} did not pass its gate: its model was judged, "
                                           "not broken"):
        builds.retry(judged.number)
    good = ledger.create_build("p", "cli", "fine")
    ledger.finish_build(good.id, "SUCCEEDED")
    with pytest.raises(NotRetryable, match=f"build {good.number} succeeded: only a failed, interrupted or stopped"):
        builds.retry(good.number)
    never = ledger.create_build("p", "cli", "bad config")
    ledger.finish_build(never.id, "FAILED", reason="the build could not start: unknown key 'x'")
    with pytest.raises(NotRetryable, match="never started .the build could not start: unknown key 'x'.: start a new"):
        builds.retry(never.number)
    running = backend.a_running_build()
    failed = ledger.create_build("p", "cli", "failed")
    ledger.update_build(failed.id, config={"image": {"build": False}})
    ledger.finish_build(failed.id, "FAILED", reason="boom")
    with pytest.raises(AlreadyRunning, match=f"build {running.number} is running; retry build {failed.number} when"):
        builds.retry(failed.number)
    with pytest.raises(NotRetryable, match=f"build {running.number} is still running: only"):
        builds.retry(running.number)
    assert ledger.get_build(failed.id).status == "FAILED" and ledger.get_build(failed.id).attempt == 1
