"""The TaskCallbacks port on Step Functions: SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat."""
from __future__ import annotations

import json
from typing import Any, Callable

from .boto import client, error_code, translate

__all__ = ["StepFunctionsCallbacks"]

# What Step Functions answers for a token nobody waits on any more: a duplicate or late answer.
_GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}


class StepFunctionsCallbacks:
    """Answers waiting states of the build state machine (the role may send task results to it only)."""

    def __init__(self, boto3_client: Any = None, boto3_session: Any = None) -> None:
        self._sfn = client("stepfunctions", boto3_client, boto3_session)

    def send_task_success(self, token: str, output: dict[str, Any]) -> bool:
        return self._send(lambda: self._sfn.send_task_success(taskToken=token, output=json.dumps(output)))

    def send_task_failure(self, token: str, error: str, cause: str) -> bool:
        return self._send(lambda: self._sfn.send_task_failure(taskToken=token, error=error[:256], cause=cause[:32768]))

    def send_task_heartbeat(self, token: str) -> bool:
        return self._send(lambda: self._sfn.send_task_heartbeat(taskToken=token))

    @staticmethod
    def _send(call: Callable[[], Any]) -> bool:
        try:
            call()
        except Exception as exc:
            if error_code(exc) in _GONE:
                return False
            raise translate(exc, "Step Functions task callback") from exc
        return True
