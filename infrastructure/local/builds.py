"""Builds port on the embedded engine: the build service bound to the engine, plus what only a
long-running local process does (a monitor that reconciles executions, start-up recovery, a
rollback that waits for the local swap, shutdown).

The rules for builds are the build service's (:mod:`lambda_pipeline.build_service`), the same
as on AWS.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from lambda_pipeline import rollbacks
from lambda_pipeline.adapters.aws.sfn_executor import history_events
from lambda_pipeline.build_service import BuildService
from lambda_pipeline.definition import render_definition
from lambda_pipeline.errors import DeployFailed, ExecutionAlreadyExists, NotFound, SageBuildError
from lambda_pipeline.model import Build, EndpointInfo
from lambda_pipeline.ports import Ports

from .engine import Engine

__all__ = ["EngineBuilds", "EngineExecutor"]

logger = logging.getLogger(__name__)

STATE_MACHINE = "sagebuild-build"


class EngineExecutor:
    """Executor port on the embedded engine: one state machine, its definition rendered per build
    (with or without the image-build states)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def prepare(self) -> None:
        """Create the state machine now: moto parses ASL slowly the first time (about 1 s)."""
        self._engine.ensure_state_machine(STATE_MACHINE, render_definition())

    def start(self, name: str, payload: dict[str, Any], image_build: bool = False) -> str:
        arn = self._engine.ensure_state_machine(STATE_MACHINE, render_definition(image_build=image_build))
        try:
            return self._engine.start(arn, name, payload)
        except Exception as exc:
            if "ExecutionAlreadyExists" in str(exc):
                raise ExecutionAlreadyExists(f"execution {name} exists already") from exc
            raise SageBuildError(f"the engine could not start execution {name}: {exc}") from exc

    def stop(self, execution_arn: str, cause: str) -> None:
        try:
            self._engine.stop(execution_arn, cause)
        except Exception as exc:
            if "ExecutionDoesNotExist" in str(exc) or "does not exist" in str(exc).lower():
                return
            raise SageBuildError(f"the engine could not stop {execution_arn}: {exc}") from exc

    def describe(self, execution_arn: str) -> dict[str, Any]:
        try:
            answer = self._engine.describe(execution_arn)
        except Exception as exc:  # executions live in memory: gone after an engine restart
            raise NotFound(f"no execution {execution_arn}") from exc
        return {"status": answer["status"], "error": answer.get("error"), "cause": answer.get("cause")}

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        try:
            return history_events(self._engine.history(execution_arn))
        except Exception as exc:
            raise NotFound(f"no execution {execution_arn}") from exc


class EngineBuilds(BuildService):
    """The Builds port, served by the engine process.

    Args:
        engine: the embedded ASL interpreter.
        ports: the local adapters.
        monitor_interval: seconds between reconciles of running builds with their executions.
        stop_grace_seconds: how long a stop waits for the training process to be gone.
    """

    def __init__(self, engine: Engine, ports: Ports, clock: Callable[[], float] = time.time,
                 monitor_interval: float = 0.25, stop_grace_seconds: float = 15.0,
                 sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._local_executor = EngineExecutor(engine)
        super().__init__(ports, self._local_executor, clock=clock, sleep=sleep,
                         stop_wait_seconds=stop_grace_seconds, monotonic=monotonic)
        self._interval = monitor_interval
        self._closed = threading.Event()
        self._monitor: threading.Thread | None = None

    # -- rollback: the local swap takes seconds, so the answer says how it went -------------
    def rollback(self, version: str | None = None) -> EndpointInfo:
        """Serve an earlier version again, from its stored artifact (no retraining), blue/green.

        Waits for the swap (seconds locally), then records a deployment of kind ``rollback`` and
        notifies people.

        Raises:
            NothingToRollBack, NotFound: see :func:`rollbacks.plan_rollback`. AlreadyRunning: a
            build is deploying right now. DeployFailed: the earlier version did not start; the
            live one stays.
        """
        hosting = self._ports.hosting
        plan, config_name = rollbacks.begin_rollback(self._ports, version, self._clock())
        deadline = self._monotonic() + float(self._ports.config.load()["deploy"]["ready_timeout_seconds"]) + 30
        while True:
            desc = hosting.describe_endpoint(plan["endpoint"]) or {}
            if desc.get("EndpointStatus") != "Updating" and not desc.get("PendingEndpointConfigName"):
                break
            if self._monotonic() > deadline:
                raise DeployFailed(f"the rollback to {plan['to']} is still updating after the ready timeout")
            self._sleep(0.02)
        if desc.get("EndpointConfigName") != config_name:
            raise DeployFailed(f"the rollback to {plan['to']} failed: {desc.get('FailureReason', 'no reason')};"
                               f" {plan['from']} still serves")
        rollbacks.record_rollback(self._ports, plan, config_name)
        return next(e for e in self.endpoints() if e.name == plan["endpoint"])

    # -- lifecycle ------------------------------------------------------------------------
    def recover(self) -> list[Build]:
        """After a restart: builds the dead engine was running continue, each in a new execution
        that keeps the steps it finished (see ``resume``). Call after the platforms recovered."""
        return [self.resume(build) for build in self._ports.ledger.list_builds(10_000, statuses=("RUNNING",))]

    def prepare(self) -> None:
        """Create the state machine now: moto parses ASL slowly the first time (about 1 s)."""
        self._local_executor.prepare()

    def start_monitor(self) -> None:
        self._monitor = threading.Thread(target=self._watch, name="build-monitor", daemon=True)
        self._monitor.start()
        self.launch_next()

    def closing(self) -> None:
        """From now on builds are queued, not launched (the engine is going away)."""
        self._closed.set()
        self.pause()

    def shutdown(self, reason: str = "the engine was shut down while the build ran") -> None:
        """Stop running builds (recorded as interrupted) before the engine goes away."""
        self.closing()
        self.interrupt_running(reason, notify=False)
        if self._monitor is not None:
            self._monitor.join(timeout=5)

    def _watch(self) -> None:
        while not self._closed.wait(self._interval):
            try:
                self.reconcile()
            except Exception:
                logger.exception("build monitor failed; retrying")
