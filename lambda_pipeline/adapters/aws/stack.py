"""A deployed stack, opened from outside (the CLI's --stack, the notebook's from_stack): its
outputs name the same resources the stack's Lambda functions get as environment variables."""
from __future__ import annotations

from typing import Any

from ...errors import ConfigError, NotFound
from .boto import error_code
from .sfn_builds import StepFunctionsBuilds

__all__ = ["open_stack", "describe_stack", "stack_outputs", "stack_parameters"]


def describe_stack(cfn: Any, name: str) -> dict[str, Any] | None:
    """CloudFormation's description of stack ``name``, or None if there is no such stack."""
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]
    except Exception as exc:
        if error_code(exc) == "ValidationError" and "does not exist" in str(exc):
            return None
        raise


def stack_outputs(description: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}


def stack_parameters(description: dict[str, Any]) -> dict[str, str]:
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in description.get("Parameters", [])}


def open_stack(name: str, region: str | None = None, session: Any = None) -> tuple[StepFunctionsBuilds, dict[str, str]]:
    """The Builds port on stack ``name`` and the stack's outputs.

    Raises:
        ConfigError: no region, or not a SageBuild stack. NotFound: no such stack there.
    """
    import boto3

    from ...lambda_entry import STACK_OUTPUT_ENV, builds_from_environment

    session = session or boto3.session.Session(region_name=region)
    if not session.region_name:
        raise ConfigError(f"no AWS region for stack {name!r}: pass a region (--region eu-west-1, "
                          "region='eu-west-1') or set AWS_REGION")
    stack = describe_stack(session.client("cloudformation"), name)
    if stack is None:
        raise NotFound(f"no stack {name!r} in {session.region_name}: deploy one with "
                       f"`sagebuild aws deploy --stack {name}`")
    outputs = stack_outputs(stack)
    missing = sorted(k for k in ("StateMachineArn", "LedgerTableName", "ConfigParameterName") if k not in outputs)
    if missing:
        raise ConfigError(f"stack {name!r} is not a SageBuild stack (no output {', '.join(missing)})")
    env = {variable: outputs[key] for key, variable in STACK_OUTPUT_ENV.items() if key in outputs}
    return builds_from_environment(env, session), outputs
