"""Executor port on AWS Step Functions: start, stop, describe and read the history of executions
of one stack's build state machine."""
from __future__ import annotations

import json
from typing import Any

from ...errors import ExecutionAlreadyExists, NotFound
from .boto import client as _client, error_code, translate

__all__ = ["StepFunctionsExecutor", "history_events"]


def history_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Step Functions history events as SageBuild shows them: type, time, id and state name."""
    return [{"type": e["type"], "timestamp": e["timestamp"].timestamp(), "id": e["id"],
             "name": (e.get("stateEnteredEventDetails") or e.get("stateExitedEventDetails") or {}).get("name")}
            for e in events]


class StepFunctionsExecutor:
    """Executions of the stack's state machine (the image-build variant is chosen at deploy time).

    Args:
        state_machine_arn: the stack's build state machine.
    """

    def __init__(self, state_machine_arn: str, boto3_client: Any = None, boto3_session: Any = None) -> None:
        self._sfn = _client("stepfunctions", boto3_client, boto3_session)
        self.state_machine_arn = state_machine_arn

    def start(self, name: str, payload: dict[str, Any], image_build: bool = False) -> str:
        try:
            return self._sfn.start_execution(stateMachineArn=self.state_machine_arn, name=name,
                                             input=json.dumps(payload))["executionArn"]
        except Exception as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                raise ExecutionAlreadyExists(f"execution {name} exists already") from exc
            raise translate(exc, f"could not start execution {name}") from exc

    def stop(self, execution_arn: str, cause: str) -> None:
        try:
            self._sfn.stop_execution(executionArn=execution_arn, error="Stopped", cause=cause[:256])
        except Exception as exc:
            if error_code(exc) != "ExecutionDoesNotExist":
                raise translate(exc, f"could not stop execution {execution_arn}") from exc

    def describe(self, execution_arn: str) -> dict[str, Any]:
        try:
            answer = self._sfn.describe_execution(executionArn=execution_arn)
        except Exception as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                raise NotFound(f"no execution {execution_arn}") from exc
            raise translate(exc, f"could not describe execution {execution_arn}") from exc
        return {"status": answer["status"], "error": answer.get("error"), "cause": answer.get("cause")}

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        try:
            pages = self._sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
            return history_events([e for page in pages for e in page["events"]])
        except Exception as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                raise NotFound(f"no execution {execution_arn}") from exc
            raise translate(exc, f"could not read the history of {execution_arn}") from exc
