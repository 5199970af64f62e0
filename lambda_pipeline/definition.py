"""Render the build state machine (ASL) from its jinja2 template.

One template, two targets: the local engine binds each Task's Lambda ARN to an in-process
handler by function name; CloudFormation substitutes real function ARNs.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import jinja2

__all__ = ["render_definition", "TASK_FUNCTIONS", "TRANSIENT_ERRORS", "local_function_arn",
           "function_name", "VARIANTS", "WAITING_STATES", "WAIT_FOR_TOKEN", "task_function"]

# Task function -> the handler it runs (module lambda_pipeline.steps).
TASK_FUNCTIONS = ("initialize", "start_image_build", "start_training", "evaluate", "register", "deploy",
                  "verify_live", "roll_back", "notify_success", "record_failure")

# The waiting states (waitForTaskToken): their handler starts or finds the work and keeps the token.
WAITING_STATES = {"BuildImage": "start_image_build", "Train": "start_training", "Deploy": "deploy",
                  "RollBack": "roll_back"}
WAIT_FOR_TOKEN = "arn:aws:states:::lambda:invoke.waitForTaskToken"

# Only these are retried; everything else is a real failure with a reason.
TRANSIENT_ERRORS = ["TransientError", "Lambda.ServiceException", "Lambda.AWSLambdaException",
                    "Lambda.SdkClientException", "Lambda.TooManyRequestsException"]

# Every shape the definition can take; tests validate each one.
VARIANTS = {"default": {"image_build": False}, "image-build": {"image_build": True}}

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "123456789012"
FUNCTION_PREFIX = "sagebuild-"

_env = jinja2.Environment(loader=jinja2.PackageLoader("lambda_pipeline", "templates"),
                          undefined=jinja2.StrictUndefined, autoescape=False)


def function_name(task: str) -> str:
    """Lambda function name of a task handler, e.g. ``sagebuild-start_training``."""
    return FUNCTION_PREFIX + task


def local_function_arn(task: str) -> str:
    """The ARN the local engine uses for a task; its function name selects the handler."""
    return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{function_name(task)}"


def task_function(state: dict[str, Any]) -> str:
    """The function a Task state runs: its Resource, or a waiting state's Parameters.FunctionName."""
    if state["Resource"] == WAIT_FOR_TOKEN:
        return str(state["Parameters"]["FunctionName"])
    return str(state["Resource"])


def render_definition(image_build: bool = False,
                      resource: Callable[[str], str] = local_function_arn,
                      task_timeout: int = 300, build_timeout: int = 7 * 24 * 3600) -> dict[str, Any]:
    """Render the state machine definition.

    Args:
        image_build: include the image build states before training.
        resource: maps a task function (one of ``TASK_FUNCTIONS``) to its ``Resource`` string.
        task_timeout: ``TimeoutSeconds`` of every short Task (handlers do one thing and return).
        build_timeout: ``TimeoutSeconds`` of the whole build.

    Returns:
        The definition as a dict (``json.dumps`` it for Step Functions).

    Example:
        >>> d = render_definition()
        >>> d["StartAt"]
        'Initialize'
    """
    text = _env.get_template("pipeline.asl.json.j2").render(
        image_build=image_build, resource=resource, task_timeout=task_timeout,
        build_timeout=build_timeout, transient_errors=TRANSIENT_ERRORS)
    return json.loads(text)
