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
from .polling import next_wait

__all__ = ["STEPS", "bind_handlers", "notification_payload", "training_job_spec", "apply_overrides"]

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


def _keep_polling(state: Event, status: str, config: dict[str, Any]) -> Event:
    """A poll that found the work still going: wait longer next time (back-off)."""
    state.update(status=status, wait=next_wait(state.get("wait"), config["polling"]))
    return state


def apply_overrides(config: dict[str, Any], hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The config with a build's hyperparameter overrides merged in, validated again."""
    merged = json.loads(json.dumps(config))
    merged["training"]["hyperparameters"].update(hyperparameters)
    return validate_config(merged, "config with this build's hyperparameters")


def _hp_string(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


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
    return {"version": version, "pipeline": config["pipeline"], "wait": config["polling"]["initial_seconds"]}


def start_image_build(p: Ports, event: Event) -> Event:
    """Package the source folder (with its Dockerfile) and start the image build; return at once."""
    build, config = _context(p, event)
    _still_wanted(build)
    if p.images is None:
        raise ConfigError("'image.build' is true, but this platform has no image builder (CodeBuild on AWS)")
    p.ledger.begin_step(build.id, "BuildImage")
    source = p.source.package_image_source(config["training"]["source_dir"])
    started = p.images.start_build(source, tag=f"{config['pipeline']}-{build.version}")
    return {"build": started["id"], "image_uri": started["image_uri"], "status": "InProgress",
            "wait": config["polling"]["initial_seconds"]}


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
    return _keep_polling(state, status["status"], config)


def start_training(p: Ports, event: Event) -> Event:
    """Package the code and start the training job; return at once."""
    build, config = _context(p, event)
    _still_wanted(build)
    p.ledger.begin_step(build.id, "Train")
    code_uri = p.source.package_code(config["training"]["source_dir"])
    data = {name: p.source.data_ref(loc) for name, loc in config["training"]["channels"].items()}
    channels = {name: ref["uri"] for name, ref in data.items()}
    spec = training_job_spec(build, config, code_uri, channels, p.artifacts.uri("training-jobs"))
    name = p.training.create_training_job(spec)
    p.ledger.update_build(build.id, training_job=name)
    return {"job_name": name, "code": code_uri, "data": data, "status": "InProgress",
            "wait": config["polling"]["initial_seconds"]}


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
        state.update(status="Completed", artifact=artifact, metrics=metrics, wait=0)
        return state
    return _keep_polling(state, status, config)


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
    """Create the model and endpoint config, then create or update the endpoint; return at once."""
    build, config = _context(p, event)
    model = event["model"]
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
            "previous_config": current.get("EndpointConfigName") if current else None,
            "wait": config["polling"]["initial_seconds"]}


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
        state.update(status="InService", wait=0)
        return state
    return _keep_polling(state, status, config)


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
    """The new model failed its checks: put the previous one back (or take a first one down)."""
    build, config = _context(p, event)
    state = event["deploy"]
    endpoint, previous = state["endpoint"], state.get("previous_config")
    p.ledger.begin_step(build.id, "RollBack", recovery=True)
    _, reason = parse_error(event.get("error") or {})
    p.ledger.mark_rolled_back(endpoint, state["endpoint_config"], reason)
    desc = p.hosting.describe_endpoint(endpoint)
    if desc is None:
        return {"endpoint": endpoint, "status": "Pending", "action": "none", "target_config": None, "wait": 0}
    if previous is None:
        p.hosting.delete_endpoint(endpoint)  # a first model that fails its checks must not serve
        return {"endpoint": endpoint, "status": "Pending", "action": "deleted", "target_config": None, "wait": 0}
    if desc.get("EndpointConfigName") == previous and desc["EndpointStatus"] == "InService":
        action = "none"  # the update never took (or the platform already rolled it back)
    else:
        p.hosting.cancel_update(endpoint, state["endpoint_config"])
        p.hosting.update_endpoint(endpoint, previous)
        action = "update"
    return {"endpoint": endpoint, "target_config": previous, "action": action, "status": "Pending",
            "wait": config["polling"]["initial_seconds"]}


def rollback_status(p: Ports, event: Event) -> Event:
    """Wait for the previous model to serve again, then record that in the registry."""
    build, config = _context(p, event)
    state = dict(event["rollback"])
    if state["action"] == "deleted" or state.get("target_config") is None:
        state.update(status="InService", wait=0)
        detail = ("no earlier version existed, so the endpoint was removed" if state["action"] == "deleted"
                  else "nothing was deployed")
        p.ledger.end_step(build.id, "RollBack", detail=detail)
        return state
    desc = p.hosting.describe_endpoint(state["endpoint"])
    if desc is None or desc["EndpointStatus"] == "Failed":
        raise DeployFailed(f"the rollback of {state['endpoint']} failed: "
                           f"{(desc or {}).get('FailureReason', 'the endpoint is gone')}")
    if desc["EndpointStatus"] != "InService" or desc.get("PendingEndpointConfigName"):
        return _keep_polling(state, desc["EndpointStatus"], config)
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
    state.update(status="InService", version=version, wait=0)
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
    error = event.get("error") or {}
    error_type, reason = parse_error(error)
    build = _build(p, event)
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


def parse_error(error: dict[str, Any]) -> tuple[str, str]:
    """(error type, one-line reason) from a Catch's ``{Error, Cause}``."""
    error_type = error.get("Error", "Unknown")
    cause = error.get("Cause", "")
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
    "initialize": initialize, "start_image_build": start_image_build,
    "image_build_status": image_build_status, "start_training": start_training, "training_status": training_status,
    "evaluate": evaluate, "register": register, "deploy": deploy, "endpoint_status": endpoint_status,
    "verify_live": verify_live, "roll_back": roll_back, "rollback_status": rollback_status,
    "notify_success": notify_success, "record_failure": record_failure,
}


def bind_handlers(ports: Ports) -> dict[str, LambdaHandler]:
    """Every step as a Lambda-shaped ``handler(event, context)`` over these ports: the engine and
    ``lambda_entry`` bind once per process, so no step looks its ports up anywhere."""
    def bound(step: Step) -> LambdaHandler:
        @functools.wraps(step)
        def handler(event: Event, context: Any = None) -> Event:
            return step(ports, event)
        return handler
    return {name: bound(step) for name, step in STEPS.items()}
