"""Builds port on the embedded engine: start (validated, queued or refused), stop, query.

The ledger is the truth; executions are how builds run. A monitor thread reconciles the two
(an execution that ended without its handlers recording it) and starts queued builds.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from lambda_pipeline.definition import render_definition
from lambda_pipeline import rollbacks
from lambda_pipeline.builds_base import EXECUTION_TO_BUILD, LedgerBackedBuilds
from lambda_pipeline.errors import AlreadyRunning, ConfigError, DeployFailed, NothingToStop
from lambda_pipeline.rollbacks import normalize_version
from lambda_pipeline.model import Build, BuildStatus, EndpointInfo
from lambda_pipeline.ports import Ports

from .engine import Engine

__all__ = ["EngineBuilds", "normalize_version"]

logger = logging.getLogger(__name__)

STATE_MACHINE = "sagebuild-build"


class EngineBuilds(LedgerBackedBuilds):
    """The Builds port, served by the engine process."""

    def __init__(self, engine: Engine, ports: Ports, clock: Callable[[], float] = time.time,
                 monitor_interval: float = 0.25, stop_grace_seconds: float = 15.0) -> None:
        self._engine = engine
        self._ports = ports
        self._clock = clock
        self._interval = monitor_interval
        self._stop_grace = stop_grace_seconds
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._monitor: threading.Thread | None = None

    # -- Builds port ----------------------------------------------------------------------
    def start(self, reason: str, source: str = "cli", hyperparameters: dict[str, Any] | None = None,
              triggers: list[dict[str, Any]] | None = None, always_queue: bool = False) -> Build:
        """Validate the config (and overrides) first, then run the build or queue it.

        ``triggers`` are what caused it (default: one, from ``source`` and ``reason``); automatic
        triggers pass ``always_queue`` so they queue even where people are refused.
        """
        config = self._start_config(reason, hyperparameters)
        hyperparameters = hyperparameters or {}
        if config["image"]["build"]:
            raise ConfigError("'image.build' is true, but the local platform trains with the engine's Python "
                              "and builds no images; set it to false locally (CodeBuild builds images on AWS)")
        with self._lock:
            running = self._ports.ledger.list_builds(1, statuses=(BuildStatus.RUNNING,))
            if running and config["builds"]["when_running"] == "refuse" and not always_queue:
                raise AlreadyRunning(f"build {running[0].number} is still running and this pipeline refuses "
                                     "a second one (builds.when_running = refuse); stop it or wait")
            build = self._ports.ledger.create_build(config["pipeline"], source, reason.strip(), hyperparameters)
            self._ports.ledger.add_triggers(build.id, triggers or [{"source": source, "reason": reason.strip()}])
            if not running and not self._closed.is_set():  # while closing, it stays queued for the next `up`
                self._launch(build, config)
        return self._ports.ledger.get_build(build.id)

    def attach_triggers(self, build_id: str, triggers: list[dict[str, Any]], reason: str) -> Build:
        """More triggers for a build still queued: recorded on it, its reason updated."""
        self._ports.ledger.add_triggers(build_id, triggers)
        self._ports.ledger.update_build(build_id, reason=reason)
        return self._ports.ledger.get_build(build_id)

    def stop(self, ref: str | int | None = None) -> Build:
        """Stop a queued or running build: its training job ends, the live endpoint stays."""
        ledger = self._ports.ledger
        with self._lock:
            build = ledger.get_build(ref) if ref is not None else self._latest_active()
            if build.done:
                raise NothingToStop(f"build {build.number} already ended ({build.status.lower()})")
            if build.status == BuildStatus.RUNNING:
                if build.training_job:
                    self._stop_training(build.training_job)
                if build.endpoint_name and build.endpoint_config:
                    self._ports.hosting.cancel_update(build.endpoint_name, build.endpoint_config)
                if build.execution_arn:
                    self._engine.stop(build.execution_arn, "stopped by a user")
            done = ledger.finish_build(build.id, BuildStatus.ABORTED, reason="stopped by a user",
                                       error_type="Stopped")
        self._notify("build.stopped", done)
        self._launch_next()
        return done

    def endpoints(self) -> list[EndpointInfo]:
        out = []
        for desc in self._ports.hosting.list_endpoints():  # type: ignore[attr-defined]
            live = self._ports.ledger.live_deployment(desc["EndpointName"])
            out.append(EndpointInfo(name=desc["EndpointName"], status=desc["EndpointStatus"],
                                    endpoint_config=desc.get("EndpointConfigName"),
                                    model_version=live["version"] if live else None, url=desc.get("Url"),
                                    updated_at=live["deployed_at"] if live else None,
                                    failure_reason=desc.get("FailureReason"),
                                    build_id=live["build_id"] if live else None))
        return out

    # -- registry and rollback ------------------------------------------------------------
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
        with self._lock:
            plan, config_name = rollbacks.begin_rollback(self._ports, version, self._clock())
            deadline = time.monotonic() + float(self._ports.config.load()["deploy"]["ready_timeout_seconds"]) + 30
            while True:
                desc = hosting.describe_endpoint(plan["endpoint"]) or {}
                if desc.get("EndpointStatus") != "Updating" and not desc.get("PendingEndpointConfigName"):
                    break
                if time.monotonic() > deadline:
                    raise DeployFailed(f"the rollback to {plan['to']} is still updating after the ready timeout")
            if desc.get("EndpointConfigName") != config_name:
                raise DeployFailed(f"the rollback to {plan['to']} failed: {desc.get('FailureReason', 'no reason')};"
                                   f" {plan['from']} still serves")
            rollbacks.record_rollback(self._ports, plan, config_name)
        return next(e for e in self.endpoints() if e.name == plan["endpoint"])

    def history(self, ref: str | int | None = None) -> list[dict[str, Any]]:
        """The execution history (state entered/exited events) of a build."""
        build = self._ports.ledger.get_build(ref)
        if not build.execution_arn:
            return []
        try:
            events = self._engine.history(build.execution_arn)
        except Exception:  # executions live in memory: gone after an engine restart
            return []
        return [{"type": e["type"], "timestamp": e["timestamp"].timestamp(), "id": e["id"],
                 "name": (e.get("stateEnteredEventDetails") or e.get("stateExitedEventDetails") or {}).get("name")}
                for e in events]

    # -- lifecycle ------------------------------------------------------------------------
    def recover(self) -> list[Build]:
        """After a restart: builds the dead engine was running are recorded as interrupted."""
        interrupted = []
        for build in self._ports.ledger.list_builds(10_000, statuses=(BuildStatus.RUNNING,)):
            step = build.current_step or "before its first step"
            done = self._ports.ledger.finish_build(
                build.id, BuildStatus.INTERRUPTED, error_type="EngineInterrupted",
                reason=f"the engine stopped while the build was at {step}; start a new build to retry")
            interrupted.append(done)
            self._notify("build.interrupted", done)
        return interrupted

    def prepare(self) -> None:
        """Create the state machine now: moto parses ASL slowly the first time (about 1 s)."""
        self._engine.ensure_state_machine(STATE_MACHINE, render_definition())

    def start_monitor(self) -> None:
        self._monitor = threading.Thread(target=self._watch, name="build-monitor", daemon=True)
        self._monitor.start()
        self._launch_next()

    def closing(self) -> None:
        """From now on builds are queued, not launched (the engine is going away)."""
        self._closed.set()

    def shutdown(self, reason: str = "the engine was shut down while the build ran") -> None:
        """Stop running builds (recorded as interrupted) before the engine goes away."""
        self._closed.set()
        for build in self._ports.ledger.list_builds(10_000, statuses=(BuildStatus.RUNNING,)):
            if build.training_job:
                self._stop_training(build.training_job)
            if build.execution_arn:
                try:
                    self._engine.stop(build.execution_arn, reason)
                except Exception:
                    logger.warning("could not stop execution", exc_info=True)
            self._ports.ledger.finish_build(build.id, BuildStatus.INTERRUPTED, reason=reason,
                                            error_type="EngineInterrupted")
        if self._monitor is not None:
            self._monitor.join(timeout=5)

    # -- internals ------------------------------------------------------------------------
    def _launch(self, build: Build, config: dict[str, Any]) -> None:
        definition = render_definition(image_build=config["image"]["build"])
        arn = self._engine.ensure_state_machine(STATE_MACHINE, definition)
        self._ports.ledger.update_build(build.id, status=BuildStatus.RUNNING, started_at=self._clock())
        execution = self._engine.start(arn, f"build-{build.number}-{build.id}", {"build_id": build.id})
        self._ports.ledger.update_build(build.id, execution_arn=execution)
        logger.info("build started", extra={"build": build.number, "reason": build.reason})
        self._notify("build.started", self._ports.ledger.get_build(build.id))

    def _launch_next(self) -> None:
        with self._lock:
            if self._closed.is_set() or self._ports.ledger.list_builds(1, statuses=(BuildStatus.RUNNING,)):
                return
            queued = self._ports.ledger.list_builds(10_000, statuses=(BuildStatus.QUEUED,))
            if not queued:
                return
            build = queued[-1]  # oldest first
            config = self._queued_config_or_fail(build)
            if config is not None:
                self._launch(build, config)

    def _stop_training(self, job: str) -> None:
        """Stop the job and wait until its process is gone (SIGTERM, grace, SIGKILL)."""
        training = self._ports.training
        training.stop_training_job(job)
        deadline = time.monotonic() + self._stop_grace
        while time.monotonic() < deadline:
            if training.describe_training_job(job)["TrainingJobStatus"] not in ("InProgress", "Stopping"):
                return
            time.sleep(0.05)
        logger.warning("training job still stopping after the grace period", extra={"job": job})

    def _watch(self) -> None:
        while not self._closed.wait(self._interval):
            try:
                self._reconcile()
            except Exception:
                logger.exception("build monitor failed; retrying")

    def _reconcile(self) -> None:
        self._reap_orphan_jobs()
        for build in self._ports.ledger.list_builds(100, statuses=(BuildStatus.RUNNING,)):
            if not build.execution_arn:
                continue
            execution = self._engine.describe(build.execution_arn)
            status = EXECUTION_TO_BUILD.get(execution["status"])
            if status is None:
                continue
            reason = execution.get("cause") or execution.get("error")
            # First terminal status wins: this only lands if no handler recorded the end.
            self._ports.ledger.finish_build(build.id, status, reason=reason, error_type=execution.get("error"))
        self._launch_next()

    def _reap_orphan_jobs(self) -> None:
        """A Task in flight when a build was stopped may still start its job: stop such jobs.

        Runs four times a second, so it asks the platform first (one query, usually nothing)."""
        training = self._ports.training
        active = training.active_jobs()  # type: ignore[attr-defined]
        if not active:
            return
        for build in self._ports.ledger.list_builds(20):
            if build.done and build.training_job in active:
                logger.warning("stopping a training job whose build already ended",
                               extra={"build": build.number, "job": build.training_job})
                training.stop_training_job(build.training_job)
