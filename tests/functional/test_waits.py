"""Event-driven waits on the AWS path, simulated: a job's EventBridge event reaches the job-events
Lambda, which answers the waiting state with SendTaskSuccess/Failure (moto's Step Functions runs
the state machine); a lost event costs one heartbeat; duplicates and stops change nothing."""
import json
import threading
import time

import pytest

from lambda_pipeline.adapters.aws.sfn_builds import StepFunctionsBuilds
from lambda_pipeline.job_events import job_of
from lambda_pipeline.job_events_entry import job_changed
from lambda_pipeline.steps import waits
from tests.functional.aws_sim import (aws, config, endpoint_event, entered, held_hosting, held_training,  # noqa: F401
                                      start_build, training_event, wait_ended, wait_for)

HAPPY_PATH = ["Initialize", "Train", "Evaluate", "Register", "Deploy", "VerifyLive", "NotifySuccess"]


def waiting_on(engine, execution, ports, build, step):
    """The wait record once the waiting state's handler returned (its own check found the job running)."""
    def ready():
        events = engine.history(execution)
        record = waits.current(ports, build.id, step)
        return record if record and record["status"] == "waiting" and events[-1]["type"] == "TaskSubmitted" else None
    return wait_for(ready)


def test_a_training_event_answers_the_waiting_state_through_the_job_events_lambda(aws):
    engine, arn, ports, *_ = aws
    training = held_training(ports)
    build, execution = start_build(engine, arn, ports, "a push")
    record = waiting_on(engine, execution, ports, build, "training")
    time.sleep(0.3)
    assert engine.describe(execution)["status"] == "RUNNING"  # nothing polls: it waits for the event
    assert entered(engine, execution) == ["Initialize", "Train"]
    training.release()  # the job ends (moto's job is Completed); SageMaker sends its events
    outcomes = []
    threads = [threading.Thread(target=lambda: outcomes.append(job_changed(training_event(record["name"]))["outcome"]))
               for _ in range(4)]  # SageMaker may send several events for one change
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["duplicate", "duplicate", "duplicate", "succeeded"]
    assert wait_ended(engine, execution) == "SUCCEEDED"
    assert entered(engine, execution) == HAPPY_PATH  # no recheck: the event answered
    done = ports.ledger.get_build(build.id)
    assert done.status == "SUCCEEDED" and [s.name for s in done.steps].count("Train") == 1
    assert done.model_artifact.startswith("s3://") and done.training_job == record["name"]
    # a late duplicate after the build ended changes nothing either
    assert job_changed(training_event(record["name"]))["outcome"] == "duplicate"
    assert ports.ledger.get_build(build.id).steps == done.steps


def test_a_lost_training_event_costs_one_heartbeat_then_the_recheck_finishes_the_build(aws):
    engine, arn, ports, _, _, ssm = aws
    ssm.put_parameter(Name="/sagebuild/sim/config", Type="String", Overwrite=True,
                      Value=json.dumps({**config(), "polling": {"heartbeat_seconds": 1}}))
    training = held_training(ports)
    build, execution = start_build(engine, arn, ports, "a push whose event is lost")
    waiting_on(engine, execution, ports, build, "training")
    training.release()  # ... and no event comes
    released = time.monotonic()
    assert wait_ended(engine, execution, timeout=30) == "SUCCEEDED"
    assert time.monotonic() - released < 10
    states = entered(engine, execution)
    assert states[:3] == ["Initialize", "Train", "TrainRecheck"] and states[-1] == "NotifySuccess"
    assert ports.ledger.get_build(build.id).status == "SUCCEEDED"


def test_a_failed_job_fails_the_build_with_the_jobs_own_reason(aws):
    engine, arn, ports, *_ = aws
    training = held_training(ports)
    build, execution = start_build(engine, arn, ports, "a bad learning rate")
    record = waiting_on(engine, execution, ports, build, "training")
    training.ends_with = {"TrainingJobStatus": "Failed", "FailureReason": "AlgorithmError: learning rate must be positive"}
    training.release()
    assert job_changed(training_event(record["name"], "Failed"), ports=ports)["outcome"] == "failed"
    assert wait_ended(engine, execution) == "FAILED"
    failed = ports.ledger.get_build(build.id)
    assert failed.status == "FAILED" and failed.failed_step == "Train"
    assert failed.failure_reason == "AlgorithmError: learning rate must be positive"


def test_intermediate_and_foreign_events_change_nothing(aws):
    engine, arn, ports, *_ = aws
    held_training(ports)
    build, execution = start_build(engine, arn, ports, "a push")
    record = waiting_on(engine, execution, ports, build, "training")
    assert job_changed(training_event(record["name"], "InProgress")) == {"ignored": "not an end a build waits for"}
    assert job_changed(training_event("someone-elses-job"))["outcome"] == "none"
    assert job_changed(endpoint_event("sim-endpoint", "UPDATING")) == {"ignored": "not an end a build waits for"}
    assert waits.current(ports, build.id, "training")["status"] == "waiting"
    assert engine.describe(execution)["status"] == "RUNNING"
    with pytest.raises(ValueError, match="not a job state-change event"):
        job_changed({"hello": "world"})


def test_the_sweep_heartbeats_a_running_job_and_answers_one_whose_event_was_lost(aws):
    engine, arn, ports, *_ = aws
    training = held_training(ports)
    build, execution = start_build(engine, arn, ports, "a long training")
    record = waiting_on(engine, execution, ports, build, "training")
    sweep = {"source": "sagebuild.sweep", "detail-type": "Scheduled Event"}
    assert job_changed(sweep, ports=ports) == {"swept": {f"training:{record['name']}": "running"}}
    assert engine.describe(execution)["status"] == "RUNNING"
    training.release()
    assert job_changed(sweep, ports=ports) == {"swept": {f"training:{record['name']}": "succeeded"}}
    assert wait_ended(engine, execution) == "SUCCEEDED"


@pytest.mark.parametrize("step", ["training", "deploy"])
def test_stop_during_a_wait_stops_the_execution_and_the_job_and_the_late_event_changes_nothing(aws, step):
    engine, arn, ports, *_ = aws
    training = held_training(ports)
    if step == "deploy":
        training.release()  # training ends at once; the endpoint takes its time
        held_hosting(ports)
    build, execution = start_build(engine, arn, ports, f"stopped while waiting on {step}")
    record = waiting_on(engine, execution, ports, build, step)
    stopped = StepFunctionsBuilds(ports, arn).stop(build.number)
    assert stopped.status == "ABORTED" and stopped.failure_reason == "stopped by a user"
    if step == "training":
        assert training.stopped == [record["name"]]
    late = training_event(record["name"]) if step == "training" else endpoint_event(record["name"])
    assert job_changed(late, ports=ports)["outcome"] == "failed"  # wakes the stopped execution's wait
    # moto 5.2.5 reports a stopped execution that waited on a token FAILED (Step Functions: ABORTED);
    # what matters is that no state ran after the stop
    wait_ended(engine, execution, timeout=10)
    assert entered(engine, execution)[-1] == ("Train" if step == "training" else "Deploy")
    assert ports.ledger.get_build(build.id).status == "ABORTED"
    assert job_changed(late, ports=ports)["outcome"] == "duplicate"
    assert ports.ledger.live_deployment("sim-endpoint") is None


def test_job_of_reads_each_services_spelling():
    assert job_of(training_event("sim-v1-abc", "Stopped")) == ("training", "sim-v1-abc")
    assert job_of(endpoint_event("sim-endpoint", "IN_SERVICE")) == ("endpoint", "sim-endpoint")
    assert job_of(endpoint_event("sim-endpoint", "InService")) == ("endpoint", "sim-endpoint")
    built = {"detail-type": "CodeBuild Build State Change",
             "detail": {"build-status": "SUCCEEDED", "project-name": "sim-images",
                        "build-id": "arn:aws:codebuild:us-east-1:123456789012:build/sim-images:0b5f"}}
    assert job_of(built) == ("image", "sim-images:0b5f")
    assert job_of({**built, "detail": {**built["detail"], "build-status": "IN_PROGRESS"}}) is None


class SlowImages:
    """An image builder whose build runs until stopped (the ImageBuilder port; CodeBuild's part)."""

    def __init__(self):
        self.stopped = []

    def start_build(self, source, tag):
        return {"id": f"sim-images:{tag}", "image_uri": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/sim:{tag}"}

    def describe_build(self, build_id):
        return {"status": "Stopped" if build_id in self.stopped else "InProgress"}

    def stop_build(self, build_id):
        self.stopped.append(build_id)


def test_stop_during_the_image_build_wait_stops_the_image_build(aws):
    engine, _, ports, _, _, ssm = aws
    from lambda_pipeline.definition import render_definition
    ssm.put_parameter(Name="/sagebuild/sim/config", Type="String", Overwrite=True,
                      Value=json.dumps({**config(), "image": {"build": True}}))
    ports.images = images = SlowImages()
    ports.source.package_image_source = lambda source_dir: "sim-artifacts/code/image-source.zip"
    arn = engine.ensure_state_machine("sim-image-build", render_definition(image_build=True))
    build, execution = start_build(engine, arn, ports, "a new Dockerfile")
    record = waiting_on(engine, execution, ports, build, "image")
    assert record["name"] == "sim-images:sim-v1"
    stopped = StepFunctionsBuilds(ports, arn).stop(build.number)
    assert stopped.status == "ABORTED" and images.stopped == ["sim-images:sim-v1"]
    built = {"detail-type": "CodeBuild Build State Change",
             "detail": {"build-status": "STOPPED", "project-name": "sim-images",
                        "build-id": "arn:aws:codebuild:us-east-1:123456789012:build/sim-images:sim-v1"}}
    assert job_changed(built, ports=ports)["outcome"] == "failed"
    wait_ended(engine, execution, timeout=10)
    assert entered(engine, execution)[-1] == "BuildImage"
    assert ports.ledger.get_build(build.id).status == "ABORTED" and ports.ledger.get_build(build.id).training_job is None

