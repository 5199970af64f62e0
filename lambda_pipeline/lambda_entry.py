"""Lambda entry points on AWS: one per Task of the state machine, built from the environment.

The CloudFormation stack sets the variables; the first call in a container builds the AWS
adapters once (cold start), later calls reuse them.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import time
import urllib.parse
from typing import Any

from .launch_messages import LaunchRejected, launch_trigger, verify_signature
from .ports import Ports
from .steps.handlers import STEPS, bind_handlers

__all__ = ["ports_from_environment", "builds_from_environment", "launch", "webhook", "state_change",
           "STACK_OUTPUT_ENV"] + sorted(STEPS)

logger = logging.getLogger(__name__)

# Stack output -> the variable the Lambda functions get: how `SageBuild.from_stack` builds the
# same adapters from a deployed stack as the functions do from their environment.
STACK_OUTPUT_ENV = {
    "StateMachineArn": "SAGEBUILD_STATE_MACHINE", "ConfigParameterName": "SAGEBUILD_CONFIG_PARAMETER",
    "LedgerTableName": "SAGEBUILD_LEDGER_TABLE", "ArtifactsBucket": "SAGEBUILD_ARTIFACTS_BUCKET",
    "StatusTopicArn": "SAGEBUILD_STATUS_TOPIC", "SageMakerRoleArn": "SAGEBUILD_SAGEMAKER_ROLE",
    "TrainingImageUri": "SAGEBUILD_TRAINING_IMAGE", "ServingImageUri": "SAGEBUILD_SERVING_IMAGE",
    "UseSpotTraining": "SAGEBUILD_USE_SPOT", "TrainingInstanceCount": "SAGEBUILD_TRAINING_INSTANCE_COUNT",
    "HostingInstanceType": "SAGEBUILD_HOSTING_INSTANCE_TYPE", "HostingInstanceCount": "SAGEBUILD_HOSTING_INSTANCE_COUNT",
    "ImageBuildProject": "SAGEBUILD_IMAGE_BUILD_PROJECT", "ImageRepositoryUri": "SAGEBUILD_IMAGE_REPOSITORY",
}


def ports_from_environment(env: dict[str, str] | None = None, session: Any = None) -> Ports:
    """AWS adapters for the ports, named by the stack's environment variables."""
    from .adapters.aws import DynamoDBLedger, SageMakerHosting, SageMakerTraining, SnsNotifier
    from .adapters.aws.stores import S3ArtifactStore, S3SourceStore, SsmConfigStore

    env = dict(os.environ if env is None else env)
    artifacts = S3ArtifactStore(env["SAGEBUILD_ARTIFACTS_BUCKET"], boto3_session=session)
    image = env["SAGEBUILD_TRAINING_IMAGE"]
    role = env["SAGEBUILD_SAGEMAKER_ROLE"]
    images = None
    if env.get("SAGEBUILD_IMAGE_BUILD_PROJECT"):
        from .adapters.aws.codebuild import CodeBuildImageBuilder
        images = CodeBuildImageBuilder(env["SAGEBUILD_IMAGE_BUILD_PROJECT"], env["SAGEBUILD_IMAGE_REPOSITORY"],
                                       boto3_session=session)
    return Ports(
        config=SsmConfigStore(env["SAGEBUILD_CONFIG_PARAMETER"], boto3_session=session),
        ledger=DynamoDBLedger(env["SAGEBUILD_LEDGER_TABLE"], boto3_session=session),
        artifacts=artifacts,
        training=SageMakerTraining(role, image, instance_count=int(env.get("SAGEBUILD_TRAINING_INSTANCE_COUNT", "1")),
                                   use_spot=env.get("SAGEBUILD_USE_SPOT", "false") == "true", boto3_session=session),
        hosting=SageMakerHosting(role, env.get("SAGEBUILD_SERVING_IMAGE") or image,
                                 instance_type=env.get("SAGEBUILD_HOSTING_INSTANCE_TYPE", "ml.t2.medium"),
                                 instance_count=int(env.get("SAGEBUILD_HOSTING_INSTANCE_COUNT", "1")),
                                 boto3_session=session),
        notifier=SnsNotifier(env["SAGEBUILD_STATUS_TOPIC"], boto3_session=session),
        source=S3SourceStore(artifacts, boto3_session=session),
        images=images,
    )


def builds_from_environment(env: dict[str, str] | None = None, session: Any = None) -> Any:
    """The Builds port on the stack's state machine (the skill, the launch functions, from_stack)."""
    from .adapters.aws.sfn_builds import StepFunctionsBuilds
    env = dict(os.environ if env is None else env)
    return StepFunctionsBuilds(ports_from_environment(env, session), env["SAGEBUILD_STATE_MACHINE"],
                               boto3_session=session)


_builds: Any = None


def _default_builds() -> Any:
    global _builds
    if _builds is None:
        _builds = builds_from_environment()
    return _builds


def forget_cached_clients() -> None:
    """Drop what this container cached (the Builds port, the webhook secret): tests, and a rotated secret."""
    global _builds, _secret
    _builds = _secret = None


# -- trigger entries --------------------------------------------------------------------------
def _triggers_of(event: dict[str, Any]) -> list[dict[str, Any]]:
    """What asked for a build: S3 uploads, launch-topic messages, or the schedule's input."""
    now = time.time()
    triggers = []
    for record in event.get("Records") or []:
        if record.get("eventSource") == "aws:s3":
            obj = record["s3"]
            uri = f"s3://{obj['bucket']['name']}/{urllib.parse.unquote_plus(obj['object']['key'])}"
            triggers.append({"source": "data", "reason": f"new data: {uri}", "details": {"uri": uri},
                             "received_at": now})
        elif record.get("EventSource") == "aws:sns":
            message = record["Sns"].get("Message") or ""
            try:
                body = json.loads(message)
            except json.JSONDecodeError:
                body = message
            if isinstance(body, dict):
                triggers.append({"source": str(body.get("source") or "launch"),
                                 "reason": str(body.get("reason") or "launch message"), "received_at": now})
            else:
                triggers.append({"source": "launch", "reason": str(body).strip() or "launch message", "received_at": now})
    if not triggers and event.get("source") == "aws.codecommit":  # the optional CodeCommit push rule
        detail = event.get("detail") or {}
        commit, branch = str(detail.get("commitId") or ""), str(detail.get("referenceName") or "")
        triggers.append({"source": "git", "reason": f"push of {commit[:8]} to {branch} ({detail.get('repositoryName')})",
                         "details": {"commit": commit, "branch": branch, "repository": detail.get("repositoryName")},
                         "received_at": now})
    if not triggers and event.get("source") == "schedule":
        triggers.append({"source": "schedule", "reason": str(event.get("reason") or "scheduled build"),
                         "received_at": now})
    return triggers


def _start_from(triggers: list[dict[str, Any]]) -> Any:
    return _default_builds().submit_triggers(triggers)


def launch(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """S3 uploads, the launch topic and the schedule start (or queue) one build per event."""
    triggers = _triggers_of(event)
    if not triggers:
        raise ValueError(f"not a launch event: {json.dumps(event)[:300]}")
    build = _start_from(triggers)
    logger.info("launch", extra={"build": build.number, "status": build.status, "triggers": len(triggers)})
    return {"build": build.number, "status": build.status, "reason": build.reason}


_secret: str | None = None


def _webhook_secret() -> str:
    """The HMAC secret, read from Secrets Manager once per container."""
    global _secret
    if _secret is None:
        from .adapters.aws.boto import client
        _secret = client("secretsmanager").get_secret_value(
            SecretId=os.environ["SAGEBUILD_WEBHOOK_SECRET"])["SecretString"]
    return _secret


def _http(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def webhook(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The git webhook (API Gateway HTTP API): X-Hub-Signature-256 verified, pushes to the branch build."""
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    try:
        verify_signature(_webhook_secret(), raw, headers.get("x-hub-signature-256"))
    except LaunchRejected as exc:
        logger.warning("webhook rejected", extra={"why": str(exc)})
        return _http(401, {"error": str(exc)})
    try:
        found = launch_trigger(raw, headers.get("x-github-event"), os.environ.get("SAGEBUILD_TRIGGER_BRANCH", "main"))
    except ValueError as exc:
        return _http(400, {"error": str(exc)})
    if found is None:
        return _http(202, {"ignored": "no build for this event (a ping, or a push to another branch)"})
    source, reason, details = found
    build = _start_from([{"source": source, "reason": reason, "received_at": time.time(), "details": details}])
    return _http(202, {"build": build.number, "status": build.status, "reason": build.reason})


def state_change(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """EventBridge: an execution ended (record it, start the next build) or the endpoint changed."""
    detail = event.get("detail") or {}
    builds = _default_builds()
    if event.get("source") == "aws.states":
        ended = builds.execution_ended(detail["executionArn"], detail["status"], detail.get("cause"), detail.get("error"))
        return {"recorded": ended.number if ended else None}
    if event.get("source") == "aws.sagemaker":
        from .rollbacks import complete_from_event
        done = complete_from_event(builds.ports, detail["EndpointName"], detail["EndpointStatus"],
                                   detail.get("EndpointConfigName"), detail.get("FailureReason"))
        return {"rollback": done}
    raise ValueError(f"not a state-change event: {json.dumps(event)[:300]}")


_bound: dict[str, Any] = {}


def _entry(name: str) -> Any:
    def entry(event: dict[str, Any], context: Any) -> Any:
        if not _bound:  # cold start: this container's ports, bound once
            _bound.update(bind_handlers(ports_from_environment()))
        return _bound[name](event, context)

    entry.__name__ = name
    entry.__doc__ = f"Lambda entry of the {name} step."
    return entry


for _name in STEPS:
    globals()[_name] = _entry(_name)
