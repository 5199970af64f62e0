"""The build's step handlers (see the package docstring)."""
from __future__ import annotations

import functools
import json
import logging
from dataclasses import replace
from typing import Any, Callable

from ..config import validate_config
from ..errors import (BuildEnded, ConfigError, DeployFailed, ImageBuildFailed, SageBuildError, SmokeTestFailed,
                      TrainingFailed, TrainingStopped)
from ..model import Build, BuildStatus
from ..ports import Ports
from .gate import check_gate
from . import replay, waits

__all__ = ["STEPS", "CHECKS", "bind_handlers", "answer_wait", "sweep_waits", "notification_payload", "training_job_spec", "apply_overrides"]

logger = logging.getLogger(__name__)
Event = dict[str, Any]


def _build(p: Ports, event: Event) -> Build:
    return p.ledger.get_build(event["build_id"])


def _config(build: Build) -> dict[str, Any]:
    if build.config is None:
        raise SageBuildError(f"build {build.number} has no config snapshot: Initialize did not run")
    return build.config


def _context(p: Ports, event: Event) -> tuple[Build, dict[str, Any]]:
    """The build and its config snapshot: what every step after Initialize needs."""
    build = _build(p, event)
    return build, _config(build)


def _still_wanted(build: Build) -> None:
    """Steps that start work check that nobody stopped the build a moment ago."""
    if build.done:
        raise BuildEnded(f"build {build.number} already ended ({build.status.lower()}); not starting more work")


def _still_going(state: Event, status: str) -> Event:
    """A check that found the work still going: the waiting state keeps waiting."""
    state.update(status=status)
    return state


def _wait(p: Ports, build: Build, step: str, name: str, state: Event, event: Event) -> Event:
    """Keep this state's task token with job ``name``, then check the job once: work that ended
    before the token was kept is answered now, the rest by the job's own event."""
    waits.begin(p, build.id, step, name, state, event["task_token"])
    return {"waiting_on": name, "answered": answer_wait(p, waits.WAITS[step].kind, name)}


def _resumed(p: Ports, build: Build, step: str) -> Event | None:
    """The state of a step entered again (its heartbeat timed out): its work already runs."""
    record = waits.current(p, build.id, step)
    return dict(record["state"]) if record else None


def apply_overrides(config: dict[str, Any], hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The config with a build's hyperparameter overrides merged in, validated again."""
    merged = json.loads(json.dumps(config))
    merged["training"]["hyperparameters"].update(hyperparameters)
    return validate_config(merged, "config with this build's hyperparameters")


def _hp_string(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def next_job_name(base: str, previous: str) -> str:
    """The name of a build's next training job after ``previous``: ``<base>-t2``, ``-t3``, ...

    >>> next_job_name("wine-v1-abc123", "wine-v1-abc123"), next_job_name("wine-v1-abc123", "wine-v1-abc123-t2")
    ('wine-v1-abc123-t2', 'wine-v1-abc123-t3')
    """
    head, _, count = previous.rpartition("-t")
    n = int(count) + 1 if head and count.isdigit() else 2
    return f"{base[:58]}-t{n}"


def training_job_spec(build: Build, config: dict[str, Any], code_uri: str,
                      channel_uris: dict[str, str], output_uri: str) -> dict[str, Any]:
    """A SageMaker ``CreateTrainingJob`` request for this build (script mode)."""
    training = config["training"]
    hps = {k: _hp_string(v) for k, v in training["hyperparameters"].items()}
    hps.update({"sagemaker_program": training["entry_point"], "sagemaker_submit_directory": code_uri})
    algorithm: dict[str, Any] = {"TrainingInputMode": "File", "MetricDefinitions": training["metric_definitions"]}
    if config["image"]["uri"]:
        algorithm["TrainingImage"] = config["image"]["uri"]
    return {
        "TrainingJobName": f"{config['pipeline']}-{build.version}-{build.id[:6]}"[:63],
        "AlgorithmSpecification": algorithm,
        "HyperParameters": hps,
        "InputDataConfig": [{"ChannelName": name, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}}}
            for name, uri in channel_uris.items()],
        "OutputDataConfig": {"S3OutputPath": output_uri},
        "ResourceConfig": {"InstanceType": training["instance_type"], "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": training["max_runtime_seconds"]},
        "Tags": [{"Key": "sagebuild:build", "Value": build.id}],
    }


def initialize(p: Ports, event: Event) -> Event:
    """Load and validate the config, assign the version, snapshot both in the ledger."""
    build = _build(p, event)
    p.ledger.begin_step(build.id, "Initialize")
    config = apply_overrides(p.config.load(), build.hyperparameters)
    version = f"v{build.number}"
    p.ledger.update_build(build.id, version=version, config=config, endpoint_name=config["deploy"]["endpoint"])
    p.ledger.end_step(build.id, "Initialize", detail=f"version {version}")
    return {"version": version, "pipeline": config["pipeline"],
            "heartbeat_seconds": config["polling"]["heartbeat_seconds"]}


def start_image_build(p: Ports, event: Event) -> Event:
    """Package the source folder (with its Dockerfile), start the image build and wait for it."""
    build, config = _context(p, event)
    state = _resumed(p, build, "image")
    if state is None:
        _still_wanted(build)
        if p.images is None:
            raise ConfigError("'image.build' is true, but this platform has no image builder (CodeBuild on AWS)")
        p.ledger.begin_step(build.id, "BuildImage")
        source = p.source.package_image_source(config["training"]["source_dir"])
        started = p.images.start_build(source, tag=f"{config['pipeline']}-{build.version}")
        p.ledger.update_build(build.id, image_build=started["id"])
        now = p.ledger.get_build(build.id)
        if now.done:  # stopped while it started, before the stop could see the id: stop it here
            p.images.stop_build(started["id"])
            _still_wanted(now)
        state = {"build": started["id"], "image_uri": started["image_uri"], "status": "InProgress"}
    return _wait(p, build, "image", state["build"], state, event)


def image_build_status(p: Ports, event: Event) -> Event:
    """Check the image build: Succeeded puts the image in the build's snapshot, failures raise."""
    build, config = _context(p, event)
    state = dict(event["image"])
    assert p.images is not None
    status = p.images.describe_build(state["build"])
    if status["status"] == "Succeeded":
        config["image"]["uri"] = state["image_uri"]
        p.ledger.update_build(build.id, config=config)
        p.ledger.end_step(build.id, "BuildImage", detail=state["image_uri"])
        state.update(status="Succeeded")
        return state
    if status["status"] == "Failed":
        raise ImageBuildFailed(status.get("reason") or "the image build failed without a reason")
    return _still_going(state, status["status"])


def start_training(p: Ports, event: Event) -> Event:
    """Package the code, start the training job and wait for it to end."""
    build, config = _context(p, event)
    state = _resumed(p, build, "training")
    if state is None:
        _still_wanted(build)
        p.ledger.begin_step(build.id, "Train")
        code_uri = p.source.package_code(config["training"]["source_dir"])
        data = {name: p.source.data_ref(loc) for name, loc in config["training"]["channels"].items()}
        channels = {name: ref["uri"] for name, ref in data.items()}
        spec = training_job_spec(build, config, code_uri, channels, p.artifacts.uri("training-jobs"))
        if build.training_job:  # an earlier attempt trained, or began to: a job name is never reused
            spec["TrainingJobName"] = next_job_name(spec["TrainingJobName"], build.training_job)
        name = p.training.create_training_job(spec)
        p.ledger.update_build(build.id, training_job=name)
        state = {"job_name": name, "code": code_uri, "data": data, "status": "InProgress"}
    return _wait(p, build, "training", state["job_name"], state, event)


def training_status(p: Ports, event: Event) -> Event:
    """Check the training job: Completed moves on, Failed/Stopped raise, else wait longer."""
    build, config = _context(p, event)
    state = dict(event["training"])
    job = p.training.describe_training_job(state["job_name"])
    status = job["TrainingJobStatus"]
    if status == "Failed":
        raise TrainingFailed(job.get("FailureReason", "the training job failed without a reason"))
    if status == "Stopped":
        raise TrainingStopped("training exceeded its max runtime of "
                              f"{config['training']['max_runtime_seconds']} s and was stopped"
                              if job.get("SecondaryStatus") == "MaxRuntimeExceeded" else "training was stopped")
    if status == "Completed":
        metrics = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}
        artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
        p.ledger.update_build(build.id, model_artifact=artifact, metrics=metrics)
        p.ledger.end_step(build.id, "Train", detail=job["TrainingJobName"])
        state.update(status="Completed", artifact=artifact, metrics=metrics)
        return state
    return _still_going(state, status)


def evaluate(p: Ports, event: Event) -> Event:
    """The validation gate: the configured metric must reach its minimum."""
    build, config = _context(p, event)
    p.ledger.begin_step(build.id, "Evaluate")
    metrics = event["training"].get("metrics", {})
    live = p.ledger.live_deployment(config["deploy"]["endpoint"])
    live_model = p.ledger.get_model(live["version"]) if live else None
    result = check_gate(metrics, config["gate"], live_model["metrics"] if live_model else None,
                        live["version"] if live else None)
    p.ledger.end_step(build.id, "Evaluate", detail=result["summary"])
    return result


def register(p: Ports, event: Event) -> Event:
    """Record the model version, its artifact, metrics and config in the registry."""
    build, config = _context(p, event)
    p.ledger.begin_step(build.id, "Register")
    training = event["training"]
    p.ledger.register_model(build.version or "", build.id, training["artifact"], training.get("code"),
                            training.get("metrics", {}), config, data_refs=training.get("data"),
                            source_ref={"trigger": build.trigger_source, "reason": build.reason})
    p.ledger.end_step(build.id, "Register", detail=build.version)
    return {"version": build.version, "model_name": f"{config['pipeline']}-{build.version}",
            "artifact": training["artifact"], "code": training.get("code")}


def deploy(p: Ports, event: Event) -> Event:
    """Create the model and endpoint config, create or update the endpoint and wait for it."""
    build, config = _context(p, event)
    state = _resumed(p, build, "deploy") or _start_deploy(p, build, config, event["model"])
    return _wait(p, build, "deploy", state["endpoint"], state, event)


def _start_deploy(p: Ports, build: Build, config: dict[str, Any], model: Event) -> Event:
    endpoint = config["deploy"]["endpoint"]
    _still_wanted(build)
    p.ledger.begin_step(build.id, "Deploy")
    entry = config["deploy"]["entry_point"]
    p.hosting.create_model(model["model_name"], model["artifact"], model.get("code") if entry else None, entry,
                           image_uri=config["image"]["uri"])
    config_name = f"{model['model_name']}-{build.id[:6]}"
    p.hosting.create_endpoint_config(config_name, model["model_name"])
    current = p.hosting.describe_endpoint(endpoint)
    if current is not None and current["EndpointStatus"] == "Failed" and not current.get("EndpointConfigName"):
        p.hosting.delete_endpoint(endpoint)
        current = None
    if current is None:
        p.hosting.create_endpoint(endpoint, config_name, config["deploy"]["port"])
        action = "create"
    else:
        p.hosting.update_endpoint(endpoint, config_name, traffic=config["deploy"]["traffic"])
        action = "update"
    p.ledger.update_build(build.id, endpoint_name=endpoint, endpoint_config=config_name)
    return {"endpoint": endpoint, "endpoint_config": config_name, "action": action, "status": "Pending",
            "previous_config": current.get("EndpointConfigName") if current else None}


def endpoint_status(p: Ports, event: Event) -> Event:
    """Check the endpoint: InService moves on, Failed raises, else wait longer."""
    build, config = _context(p, event)
    state = dict(event["deploy"])
    desc = p.hosting.describe_endpoint(state["endpoint"])
    if desc is None:
        raise DeployFailed(f"endpoint {state['endpoint']} disappeared during the deployment")
    status = desc["EndpointStatus"]
    if status == "Failed":
        raise DeployFailed(desc.get("FailureReason", "the endpoint failed to start"))
    if status == "InService":
        p.ledger.end_step(build.id, "Deploy", detail=f"{state['action']} {state['endpoint']}")
        state.update(status="InService")
        return state
    return _still_going(state, status)


def verify_live(p: Ports, event: Event) -> Event:
    """The endpoint must serve the new config (catching silent rollbacks) and answer /ping."""
    build = _build(p, event)
    state = event["deploy"]
    p.ledger.begin_step(build.id, "VerifyLive")
    desc = p.hosting.describe_endpoint(state["endpoint"]) or {}
    live = desc.get("EndpointConfigName")
    if live != state["endpoint_config"]:
        why = desc.get("FailureReason", "no reason given")
        raise DeployFailed(f"endpoint {state['endpoint']} still serves {live or 'nothing'}, "
                           f"not {state['endpoint_config']}: {why}")
    if not p.hosting.ping_endpoint(state["endpoint"]):
        raise DeployFailed(f"endpoint {state['endpoint']} does not answer /ping")
    # It serves traffic now: the registry records that, even if the smoke check undoes it.
    p.ledger.record_deployment(state["endpoint"], event["model"]["version"], live, build.id)
    sample = _config(build)["deploy"]["sample_payload"]
    if sample:
        status, body = p.hosting.invoke_endpoint(state["endpoint"], sample.encode(),
                                                 _config(build)["deploy"]["sample_content_type"])
        if status != 200:
            answer = body.decode("utf-8", "replace").strip()[:200]
            raise SmokeTestFailed(f"the smoke invocation with the sample payload answered "
                                  f"{'HTTP ' + str(status) if status else 'nothing'}: {answer}")
    p.ledger.end_step(build.id, "VerifyLive", detail=desc.get("Url"))
    return {"endpoint": state["endpoint"], "endpoint_config": live, "url": desc.get("Url")}


def roll_back(p: Ports, event: Event) -> Event:
    """The new model failed its checks: put the previous one back (or take a first one down), and
    wait until that serves."""
    build, _ = _context(p, event)
    state = _resumed(p, build, "rollback") or _start_rollback(p, build, event)
    return _wait(p, build, "rollback", state["endpoint"], state, event)


def _start_rollback(p: Ports, build: Build, event: Event) -> Event:
    state = event["deploy"]
    endpoint, previous = state["endpoint"], state.get("previous_config")
    p.ledger.begin_step(build.id, "RollBack", recovery=True)
    _, reason = parse_error(event.get("error") or {})
    p.ledger.mark_rolled_back(endpoint, state["endpoint_config"], reason)
    desc = p.hosting.describe_endpoint(endpoint)
    if desc is None:
        return {"endpoint": endpoint, "status": "Pending", "action": "none", "target_config": None}
    if previous is None:
        p.hosting.delete_endpoint(endpoint)  # a first model that fails its checks must not serve
        return {"endpoint": endpoint, "status": "Pending", "action": "deleted", "target_config": None}
    if desc.get("EndpointConfigName") == previous and desc["EndpointStatus"] == "InService":
        action = "none"  # the update never took (or the platform already rolled it back)
    else:
        p.hosting.cancel_update(endpoint, state["endpoint_config"])
        p.hosting.update_endpoint(endpoint, previous)
        action = "update"
    return {"endpoint": endpoint, "target_config": previous, "action": action, "status": "Pending"}


def rollback_status(p: Ports, event: Event) -> Event:
    """Wait for the previous model to serve again, then record that in the registry."""
    build, config = _context(p, event)
    state = dict(event["rollback"])
    if state["action"] == "deleted" or state.get("target_config") is None:
        state.update(status="InService")
        detail = ("no earlier version existed, so the endpoint was removed" if state["action"] == "deleted"
                  else "nothing was deployed")
        p.ledger.end_step(build.id, "RollBack", detail=detail)
        return state
    desc = p.hosting.describe_endpoint(state["endpoint"])
    if desc is None or desc["EndpointStatus"] == "Failed":
        raise DeployFailed(f"the rollback of {state['endpoint']} failed: "
                           f"{(desc or {}).get('FailureReason', 'the endpoint is gone')}")
    if desc["EndpointStatus"] != "InService" or desc.get("PendingEndpointConfigName"):
        # InService with a config still pending is mid-swap: not the InService the waiting state ends on
        return _still_going(state, "Updating" if desc["EndpointStatus"] == "InService" else desc["EndpointStatus"])
    if desc.get("EndpointConfigName") != state["target_config"]:
        raise DeployFailed(f"the rollback of {state['endpoint']} did not take: it serves "
                           f"{desc.get('EndpointConfigName')}: {desc.get('FailureReason', 'no reason given')}")
    previous = next((d for d in p.ledger.deployments(endpoint=state["endpoint"])
                     if d["endpoint_config"] == state["target_config"]), None)
    version = previous["version"] if previous else state["target_config"]
    if state["action"] == "update":
        p.ledger.record_deployment(state["endpoint"], version, state["target_config"], build.id, kind="auto-rollback")
        detail = f"rolled back automatically to {version}, which serves again"
    else:
        detail = f"{version} kept serving"
    p.ledger.end_step(build.id, "RollBack", detail=detail)
    state.update(status="InService", version=version)
    return state


def notify_success(p: Ports, event: Event) -> Event:
    """Mark the build succeeded and tell people. A failing notifier never fails the build."""
    build = _build(p, event)
    p.ledger.begin_step(build.id, "Notify")
    _publish(p, "build.succeeded", replace(p.ledger.get_build(build.id), status=BuildStatus.SUCCEEDED))
    p.ledger.end_step(build.id, "Notify")
    done = p.ledger.finish_build(build.id, BuildStatus.SUCCEEDED)
    return {"status": done.status}


def record_failure(p: Ports, event: Event) -> Event:
    """Record why the build failed, keep the live endpoint as it was, and tell people."""
    error = _with_cause(p, event["build_id"], event.get("error") or {})
    if isinstance(error.get("rollback"), dict):
        error["rollback"] = _with_cause(p, event["build_id"], error["rollback"])
    error_type, reason = parse_error(error)
    build = _build(p, event)
    if build.done:  # a user stopped it a moment ago (or this is a retried call): that end stands, told once
        return {"status": build.status, "failed_step": build.failed_step, "reason": build.failure_reason}
    if build.endpoint_name and build.endpoint_config and build.current_step == "Deploy":
        p.hosting.cancel_update(build.endpoint_name, build.endpoint_config)
    status = BuildStatus.GATE_FAILED if error_type == "GateFailed" else BuildStatus.FAILED
    rollback = next((s for s in build.steps if s.name == "RollBack"), None)
    if isinstance(error.get("rollback"), dict):
        _, rollback_reason = parse_error(error["rollback"])
        reason = f"{reason}; the automatic rollback failed too: {rollback_reason}"
    elif rollback is not None and rollback.detail:
        reason = f"{reason}; {rollback.detail}"
    done = p.ledger.finish_build(build.id, status, reason=reason, error_type=error_type)
    _publish(p, "build.gate_failed" if status == BuildStatus.GATE_FAILED else "build.failed", done)
    return {"status": done.status, "failed_step": done.failed_step, "reason": done.failure_reason}


def _with_cause(p: Ports, build_id: str, error: dict[str, Any]) -> dict[str, Any]:
    """A waiting step's failure without its cause (the engine drops SendTaskFailure's cause) gets
    it back from the wait record."""
    if error.get("Cause") or not error.get("Error"):
        return dict(error)
    return {**error, "Cause": waits.failure_cause(p, build_id, str(error["Error"])) or ""}


def parse_error(error: dict[str, Any]) -> tuple[str, str]:
    """(error type, one-line reason) from a Catch's ``{Error, Cause}``."""
    error_type = error.get("Error", "Unknown")
    cause = error.get("Cause") or ""
    try:
        parsed = json.loads(cause)
        if isinstance(parsed, dict) and "errorMessage" in parsed:
            cause = parsed["errorMessage"]
            error_type = parsed.get("errorType", error_type)
    except (json.JSONDecodeError, TypeError):
        pass
    if error_type == "States.Timeout":
        cause = cause or "a step took longer than its timeout"
    return error_type, (str(cause).strip() or error_type)


def notification_payload(build: Build, live: dict[str, Any] | None) -> dict[str, Any]:
    """What every notification carries: enough to act on without opening anything."""
    gate = ((build.config or {}).get("gate") or {})
    metric = gate.get("metric")
    return {"build_id": build.id, "build_number": build.number, "pipeline": build.pipeline,
            "version": build.version, "status": build.status, "trigger_source": build.trigger_source,
            "reason": build.reason, "triggers": [{k: t[k] for k in ("source", "reason", "details")}
                                                 for t in build.triggers],
            "duration_seconds": round(build.duration or 0.0, 1), "metrics": build.metrics,
            "gate": {"metric": metric, "value": build.metrics.get(metric) if metric else None,
                     "minimum": gate.get("minimum")},
            "failed_step": build.failed_step, "failure_reason": build.failure_reason, "live": live}


def _publish(p: Ports, event: str, build: Build) -> None:
    live = p.ledger.live_deployment(build.endpoint_name) if build.endpoint_name else None
    try:
        p.notifier.publish(event, notification_payload(build, live))
    except Exception:  # a failing sink must never fail the build
        logger.exception("notification failed", extra={"event": event, "build": build.number})


Step = Callable[[Ports, Event], Event]
LambdaHandler = Callable[[Event, Any], Event]

STEPS: dict[str, Step] = {
    "initialize": initialize, "start_image_build": start_image_build, "start_training": start_training,
    "evaluate": evaluate, "register": register, "deploy": deploy, "verify_live": verify_live,
    "roll_back": roll_back, "notify_success": notify_success, "record_failure": record_failure,
}

# The status check of each waiting step (waits.WAITS): run once per answer, never as a state.
CHECKS: dict[str, Step] = {"image": image_build_status, "training": training_status, "deploy": endpoint_status,
                           "rollback": rollback_status}


def answer_wait(p: Ports, kind: str, name: str) -> str:
    """Job ``name`` of ``kind`` (training, image, endpoint) changed: answer the state waiting on it."""
    return waits.answer(p, kind, name, CHECKS)


def sweep_waits(p: Ports) -> dict[str, str]:
    """Heartbeat every waiting state whose job still runs; answer those whose event was lost."""
    return waits.sweep(p, CHECKS)


def bind_handlers(ports: Ports) -> dict[str, LambdaHandler]:
    """Every step as a Lambda-shaped ``handler(event, context)`` over these ports: the engine and
    ``lambda_entry`` bind once per process, so no step looks its ports up anywhere."""
    def bound(name: str, step: Step) -> LambdaHandler:
        kept_as = replay.STEP_OF_TASK.get(name)

        @functools.wraps(step)
        def handler(event: Event, context: Any = None) -> Event:
            if kept_as is None:
                return step(ports, event)
            return _replayed_or_run(ports, kept_as, step, event)
        return handler
    return {name: bound(name, step) for name, step in STEPS.items()}


def _replayed_or_run(p: Ports, kept_as: str, step: Step, event: Event) -> Event:
    """A step an earlier attempt of this build finished gives that output again (a waiting step
    answers its token with it at once); any other runs, and a plain step's output is kept."""
    done = replay.kept(p, event["build_id"], kept_as)
    if done is not None:
        logger.info("step replayed", extra={"build": event["build_id"], "step": kept_as})
        if "task_token" in event:
            _callbacks_of(p).send_task_success(event["task_token"], done)
            return {"replayed": kept_as}
        return done
    output = step(p, event)
    if "task_token" not in event:  # a waiting step's output is its answer: waits keeps that
        replay.keep(p, event["build_id"], kept_as, output)
    return output


def _callbacks_of(p: Ports) -> Any:
    if p.callbacks is None:
        raise SageBuildError("these ports have no task callbacks: waiting states cannot be answered")
    return p.callbacks
