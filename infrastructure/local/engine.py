"""moto's Step Functions interpreter, in process, with Lambda tasks bound to step handlers.

THE SEAM (the one place SageBuild touches moto internals; moto is pinned to 5.2.5):
with ``lambda.use_docker = false`` moto routes every Lambda invoke the interpreter makes to
``moto.awslambda_simple.models.LambdaSimpleBackend.invoke``. We replace that method with a
dispatcher that maps the function name in the Task's ARN (``sagebuild-<task>``) to
``HANDLERS[task]`` and runs it in the interpreter's thread. An exception becomes a Lambda
function error whose ``errorType`` is the exception's class name, so Retry/Catch match on it
exactly as on AWS. ``tests/functional/test_engine_seam.py`` guards this.

Waiting states (``lambda:invoke.waitForTaskToken``) go through the same seam with the token in
the payload; the engine answers tokens with moto's SendTaskSuccess/Failure/Heartbeat (it is the
local TaskCallbacks adapter). Two moto 5.2.5 gaps are covered here and nowhere else: an answer
that comes while the waiting state's handler runs (heartbeat after the handler returns), and a
stopped execution reported RUNNING/FAILED while or after it waited (``describe`` says ABORTED).
SendTaskFailure's cause is dropped by moto; the wait record keeps it (``steps.waits``).
"""
from __future__ import annotations

import json
import logging
import threading
import time
import traceback
import uuid
from typing import Any, Callable

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend

from lambda_pipeline.definition import FUNCTION_PREFIX, LOCAL_ACCOUNT, LOCAL_REGION
from lambda_pipeline.errors import SageBuildError

__all__ = ["Engine", "LambdaContext"]

logger = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any], Any], Any]

# moto logs every failed execution with a dump of the state tree; our ledger says it better.
for _name in ("moto.stepfunctions.parser", "moto.stepfunctions"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)

_MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
_ROLE = f"arn:aws:iam::{LOCAL_ACCOUNT}:role/sagebuild-local"
_active: "Engine | None" = None
_original_invoke = LambdaSimpleBackend.invoke


class LambdaContext:
    """The parts of a Lambda context handlers may read."""

    def __init__(self, function_name: str, timeout_seconds: int = 300) -> None:
        self.function_name = function_name
        self.aws_request_id = uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _dispatch(backend: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
              response_headers: Any) -> bytes:
    engine = _active
    if engine is None:
        return _original_invoke(backend, function_name, qualifier, body, headers, response_headers)
    return engine._invoke(function_name, body, response_headers)


class Engine:
    """Runs ASL state machines locally. One per process (the seam is process-wide).

    Args:
        handlers: task name -> handler, e.g. ``{"initialize": initialize}``.
    """

    def __init__(self, handlers: dict[str, Handler]) -> None:
        global _active
        if _active is not None:
            raise SageBuildError("an engine is already running in this process")
        self._handlers = handlers
        self._mock = mock_aws(config=_MOTO_CONFIG)
        self._mock.start()
        LambdaSimpleBackend.invoke = _dispatch
        _active = self
        self._sfn = boto3.client("stepfunctions", region_name=LOCAL_REGION, aws_access_key_id="local",
                                 aws_secret_access_key="local")
        self._lock = threading.RLock()
        self._closing = False
        self._stopped: set[str] = set()

    def bind(self, handlers: dict[str, Handler]) -> None:
        """Replace the task handlers (a simulation binds them once its ports exist)."""
        self._handlers = handlers

    # -- state machines and executions ----------------------------------------------------
    def ensure_state_machine(self, name: str, definition: dict[str, Any]) -> str:
        """Create the state machine, or update it if the definition changed. Returns its ARN."""
        text = json.dumps(definition)
        with self._lock:
            for sm in self._sfn.list_state_machines()["stateMachines"]:
                if sm["name"] == name:
                    arn = sm["stateMachineArn"]
                    if self._sfn.describe_state_machine(stateMachineArn=arn)["definition"] != text:
                        self._sfn.update_state_machine(stateMachineArn=arn, definition=text)
                    return arn
            return self._sfn.create_state_machine(name=name, definition=text, roleArn=_ROLE)["stateMachineArn"]

    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> str:
        with self._lock:
            return self._sfn.start_execution(stateMachineArn=state_machine_arn, name=name,
                                             input=json.dumps(payload))["executionArn"]

    def stop(self, execution_arn: str, cause: str, settle_seconds: float = 2.0) -> None:
        """Abort an execution. Retries briefly: moto refuses a stop in the instant after a start,
        before the execution's interpreter exists."""
        deadline = time.monotonic() + settle_seconds
        while True:
            try:
                with self._lock:
                    self._sfn.stop_execution(executionArn=execution_arn, error="Stopped", cause=cause[:256])
                    self._stopped.add(execution_arn)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    # -- task tokens (the TaskCallbacks port) ----------------------------------------------
    def send_task_success(self, token: str, output: dict[str, Any]) -> bool:
        """Answer a waiting state with ``output`` (its result). False if nobody waits on ``token``."""
        return self._answer(token, lambda: self._sfn.send_task_success(taskToken=token, output=json.dumps(output)))

    def send_task_failure(self, token: str, error: str, cause: str) -> bool:
        """Fail a waiting state with ``error`` (what its Catch matches). False if nobody waits."""
        return self._answer(token, lambda: self._sfn.send_task_failure(taskToken=token, error=error[:256],
                                                                        cause=cause[:32768]))

    def send_task_heartbeat(self, token: str) -> bool:
        """Tell a waiting state its job still runs (its heartbeat timeout starts again)."""
        try:
            with self._lock:
                self._sfn.send_task_heartbeat(taskToken=token)
            return True
        except ClientError:
            return False

    def _answer(self, token: str, send: Callable[[], Any]) -> bool:
        try:
            with self._lock:
                send()
        except ClientError:
            return False
        return True

    def _after_waiting_handler(self, token: str) -> None:
        """moto 5.2.5 sets up a waiting state's heartbeat wait only after its Lambda returned, and that
        wait does not look at an outcome that came earlier (work that ended while the handler ran, an
        event in the instant after it): heartbeat the token until the wait exists, so it sees the
        outcome (or, with none yet, just waits on). Step Functions has no such gap."""
        threading.Thread(target=self._nudge, args=(token,), name="sagebuild-token-nudge", daemon=True).start()

    def _nudge(self, token: str, seconds: float = 5.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and _active is self:
            try:
                if self.send_task_heartbeat(token):
                    return
            except Exception:  # the engine closing meanwhile (its moto backend going): nothing waits now
                if _active is not self or self._closing:
                    return
                logger.debug("heartbeat nudge failed; trying again", exc_info=True)
            time.sleep(0.01)

    def describe(self, execution_arn: str) -> dict[str, Any]:
        with self._lock:
            return self._as_stopped(self._sfn.describe_execution(executionArn=execution_arn))

    def executions(self, state_machine_arn: str) -> list[dict[str, Any]]:
        with self._lock:
            return [self._as_stopped(e) for e in
                    self._sfn.list_executions(stateMachineArn=state_machine_arn)["executions"]]

    def _as_stopped(self, execution: dict[str, Any]) -> dict[str, Any]:
        """moto 5.2.5 keeps a stopped execution RUNNING while a state waits on its task token, and
        reports it FAILED when that wait ends; Step Functions says ABORTED at once. Say ABORTED."""
        if execution["executionArn"] in self._stopped and execution["status"] in ("RUNNING", "FAILED"):
            return {**execution, "status": "ABORTED"}
        return execution

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        with self._lock:
            return self._sfn.get_execution_history(executionArn=execution_arn)["events"]

    def close(self) -> None:
        """Stop what still runs (a state waiting on a token would otherwise wake after the engine
        is gone and invoke whatever engine comes next in this process), then the mock."""
        global _active
        self._closing = True
        try:
            with self._lock:
                for machine in self._sfn.list_state_machines()["stateMachines"]:
                    for execution in self._sfn.list_executions(stateMachineArn=machine["stateMachineArn"],
                                                               statusFilter="RUNNING")["executions"]:
                        self._sfn.stop_execution(executionArn=execution["executionArn"], error="EngineClosed")
        except Exception:  # closing must not fail on what it tidies
            logger.warning("could not stop the running executions", exc_info=True)
        LambdaSimpleBackend.invoke = _original_invoke
        _active = None
        self._mock.stop()

    # -- the seam -------------------------------------------------------------------------
    def _invoke(self, function_name: str, body: Any, response_headers: Any) -> bytes:
        short = function_name.split(":")[-1]
        task = short[len(FUNCTION_PREFIX):] if short.startswith(FUNCTION_PREFIX) else short
        handler = self._handlers.get(task)
        if handler is None:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": "HandlerNotFound",
                               "errorMessage": f"no local handler for Lambda function {short!r}"}).encode()
        try:
            event = json.loads(body) if body else {}
            try:
                result = handler(event, LambdaContext(short))
            finally:
                if isinstance(event, dict) and event.get("task_token"):
                    self._after_waiting_handler(str(event["task_token"]))
            return json.dumps(result).encode()
        except Exception as exc:  # becomes a Lambda function error, as on AWS
            if not isinstance(exc, SageBuildError):
                logger.error("step handler crashed", exc_info=True, extra={"task": task})
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc),
                               "stackTrace": traceback.format_exception(exc)[-5:]}).encode()

