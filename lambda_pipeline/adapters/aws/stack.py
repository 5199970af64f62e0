"""A deployed stack, opened from outside (the CLI's --stack, the notebook's from_stack): its
outputs name the same resources the stack's Lambda functions get as environment variables."""
from __future__ import annotations

from typing import Any

from ...errors import ConfigError, NotFound
from .boto import error_code
from .sfn_builds import StepFunctionsBuilds

__all__ = ["open_stack"]


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
    try:
        stack = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    except Exception as exc:
        if error_code(exc) == "ValidationError":
            raise NotFound(f"no stack {name!r} in {session.region_name}: deploy one with "
                           f"`sagebuild aws deploy --stack {name}`") from None
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    missing = sorted(k for k in ("StateMachineArn", "LedgerTableName", "ConfigParameterName") if k not in outputs)
    if missing:
        raise ConfigError(f"stack {name!r} is not a SageBuild stack (no output {', '.join(missing)})")
    env = {variable: outputs[key] for key, variable in STACK_OUTPUT_ENV.items() if key in outputs}
    return builds_from_environment(env, session), outputs
