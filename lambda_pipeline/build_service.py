"""One build service: the rules for builds, written once for the local engine and for AWS.

Start (validated once; the snapshot the build runs with is taken by Initialize), refuse or
queue, coalesce automatic triggers into one queued follow-up, launch the next queued build,
stop, record rejected triggers, and reconcile executions that ended without their handlers
recording it. It works over two ports: an :class:`~lambda_pipeline.ports.Executor` (the
embedded engine locally, Step Functions on AWS) and the ledger's compare-and-swap
(``swap_state``: SQLite ``BEGIN IMMEDIATE`` locally, DynamoDB conditional writes on AWS), so
processes and Lambdas running side by side agree on which build runs. Adapters only do I/O.

Example::

    service = BuildService(ports, executor)
    build = service.start("new features", source="cli")
    service.stop(build.number)
"""
from __future__ import annotations

import builtins
import dataclasses
import json
import logging
import time
import uuid
from typing import Any, Callable

from . import rollbacks
from .errors import (AlreadyRunning, ConfigError, ExecutionAlreadyExists, InvocationError, NotFound,
                     NothingToStop, NotRetryable, SageBuildError, TransientError)
from .model import Build, BuildStatus, EndpointInfo, LogChunk
from .ports import Executor, Ports
from .steps import replay, waits
from .steps.handlers import apply_overrides, notification_payload

__all__ = ["BuildService", "combined_reason", "execution_name", "EXECUTION_TO_BUILD", "ACTIVE_SLOT", "QUEUE_SLOT"]

logger = logging.getLogger(__name__)

ACTIVE_SLOT = "launch-slot"  # ledger state: the id of the build that runs (or is being launched)
QUEUE_SLOT = "queue-slot"  # ledger state: the queued build automatic triggers join
_PENDING_TAKEOVER_SECONDS = 30.0  # a queue-slot claim older than this was left by a process that died
_REASON_CHARS = 500

# A state machine execution's end -> the build's, for ends no handler recorded.
EXECUTION_TO_BUILD = {"SUCCEEDED": BuildStatus.SUCCEEDED, "FAILED": BuildStatus.FAILED,
                      "TIMED_OUT": BuildStatus.FAILED, "ABORTED": BuildStatus.ABORTED}
_END_EVENT = {BuildStatus.SUCCEEDED: "build.succeeded", BuildStatus.FAILED: "build.failed",
              BuildStatus.ABORTED: "build.stopped"}


def combined_reason(triggers: builtins.list[dict[str, Any]]) -> str:
    """One reason for many triggers: the first three, and how many more (at most 500 characters).

    >>> combined_reason([{"source": "data", "reason": "a.csv"}, {"source": "git", "reason": "push"}])
    '2 triggers: data: a.csv; git: push'
    """
    if len(triggers) == 1:
        return str(triggers[0]["reason"])[:_REASON_CHARS]
    shown = "; ".join(f"{t['source']}: {t['reason']}" for t in triggers[:3])
    more = f"; and {len(triggers) - 3} more" if len(triggers) > 3 else ""
    return f"{len(triggers)} triggers: {shown}{more}"[:_REASON_CHARS]


def execution_name(build: Build, run: int = 1) -> str:
    """``build-<number>-<id>``, then ``…_<run>`` for its later executions (a retry, a resume):
    unique per build and run, so a retried start cannot run it twice."""
    suffix = f"_{run}" if run > 1 else ""
    return f"build-{build.number}-{build.id}{suffix}"[:80]


def build_id_of_execution(execution_arn: str) -> str | None:
    """The build id inside an execution's ARN (see :func:`execution_name`), or None."""
    name = execution_arn.rsplit(":", 1)[-1]
    parts = name.split("-", 2)
    return parts[2].split("_", 1)[0] if len(parts) == 3 and parts[0] == "build" else None


_RETRYABLE = (BuildStatus.FAILED, BuildStatus.INTERRUPTED, BuildStatus.ABORTED)



class BuildService:
    """The Builds port: the ledger is the truth, the executor runs builds, the ports do the work.

    Args:
        ports: the adapters of this process (local or AWS).
        executor: starts, stops and describes executions of the build state machine.
        clock: wall-clock time, recorded in the ledger.
        sleep: how waiting is done (tests pass a fake).
        stop_wait_seconds: how long a stop waits for the training job to be gone (locally the
            process must be dead before the build is recorded stopped; on AWS 0: never wait).
    """

    def __init__(self, ports: Ports, executor: Executor, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, stop_wait_seconds: float = 0.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._ports = ports
        self._executor = executor
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        self._stop_wait = stop_wait_seconds
        self._paused = False

    @property
    def ports(self) -> Ports:
        """The adapters this service works with (the state-change entry reads the ledger through them)."""
        return self._ports

    # -- starting -------------------------------------------------------------------------
    def start(self, reason: str, source: str = "cli", hyperparameters: dict[str, Any] | None = None,
              triggers: builtins.list[dict[str, Any]] | None = None, always_queue: bool = False) -> Build:
        """Validate, then run the build or queue it behind the running one.

        Args:
            reason: why (required).
            source: who asked (``cli``, ``voice``, ``data``, ...).
            hyperparameters: overrides for this build only (validated with the config).
            triggers: what caused it (default: one, from ``source`` and ``reason``).
            always_queue: automatic triggers queue even where people are refused, and join the one
                queued build if there is one (its reason then names them all).

        Raises:
            ConfigError: the config (with the overrides) does not validate; nothing is recorded.
            AlreadyRunning: a build runs and the pipeline refuses people a second one.
        """
        config = self._start_config(reason, hyperparameters)
        hyperparameters = hyperparameters or {}
        ledger = self._ports.ledger
        triggers = triggers or [{"source": source, "reason": reason.strip()}]
        running = self.active()
        if running and config["builds"]["when_running"] == "refuse" and not always_queue:
            raise AlreadyRunning(f"build {running.number} is still running and this pipeline refuses "
                                 "a second one (builds.when_running = refuse); stop it or wait")
        token = None
        if running and always_queue and not hyperparameters:
            joined, token = self._join_queued(triggers)
            if joined is not None:
                return joined
        build = ledger.create_build(config["pipeline"], source, reason.strip(), hyperparameters)
        ledger.add_triggers(build.id, triggers)
        if token is not None:  # we hold the queue slot: from now on triggers join this build
            ledger.swap_state(QUEUE_SLOT, token, build.id)
        # Oldest first: this build, or one queued before it whose launch an ending build missed.
        self.launch_next()
        return ledger.get_build(build.id)

    def submit_triggers(self, triggers: builtins.list[dict[str, Any]]) -> Build:
        """Automatic triggers (git, data, schedule, launch messages): one build for them all, queued
        behind a running one or joined to the queued follow-up. If no build can start (a broken
        config) a FAILED build records every trigger and why, and people are told: nothing is lost."""
        reason = combined_reason(triggers)
        source = triggers[0]["source"] if len({t["source"] for t in triggers}) == 1 else "triggers"
        try:
            return self.start(reason, source=source, triggers=triggers, always_queue=True)
        except ConfigError as exc:
            logger.error("triggered build could not start", extra={"error": str(exc), "triggers": len(triggers)})
            return self.record_rejected(reason, triggers, exc)

    def record_rejected(self, reason: str, triggers: builtins.list[dict[str, Any]], error: Exception) -> Build:
        """Triggers that could not start a build: a FAILED build records them and why."""
        try:
            pipeline = self._ports.config.load()["pipeline"]
        except ConfigError:
            pipeline = "unknown"
        ledger = self._ports.ledger
        build = ledger.create_build(pipeline, triggers[0]["source"], reason)
        ledger.add_triggers(build.id, triggers)
        done = ledger.finish_build(build.id, BuildStatus.FAILED, reason=f"the build could not start: {error}",
                                   error_type=type(error).__name__)
        self._notify("build.failed", done)
        return done

    def launch_next(self) -> Build | None:
        """Start the oldest queued build if none runs (and nobody else launches one this moment)."""
        ledger = self._ports.ledger
        for _ in range(100):  # each pass ends one queued build that no longer validates, or launches
            if self._paused:
                return None
            holder, active = self._launch_slot()
            if active is not None:
                return None
            queued = ledger.list_builds(10_000, statuses=(BuildStatus.QUEUED,))
            if not queued:
                return None
            build = queued[-1]  # oldest first
            # One compare-and-swap: of launchers at the same moment exactly one wins; the rest leave it queued.
            if not ledger.swap_state(ACTIVE_SLOT, holder, build.id):
                return None
            config = self._queued_config_or_fail(build)
            if config is not None:
                self._launch(build, config)
                return ledger.get_build(build.id)
        return None

    def pause(self) -> None:
        """From now on builds are queued, not launched (the engine is going away)."""
        self._paused = True

    # -- stopping -------------------------------------------------------------------------
    def stop(self, ref: str | int | None = None) -> Build:
        """Stop a queued or running build: its image build, training job and execution end, an
        endpoint update it started is cancelled where the platform can, the live model stays.

        Raises:
            NothingToStop: no build is running or queued, or the one named already ended.
        """
        ledger = self._ports.ledger
        build = ledger.get_build(ref) if ref is not None else self._latest_active()
        if build.done:
            raise NothingToStop(f"build {build.number} already ended ({build.status.lower()})")
        # The ledger first: a stopped job's end answers the state waiting on it, and that answer must
        # find the build ended (it then changes nothing) rather than fail it. Then the execution, so
        # no state starts more work, then the work itself.
        done = ledger.finish_build(build.id, BuildStatus.ABORTED, reason="stopped by a user", error_type="Stopped")
        if build.status == BuildStatus.RUNNING:
            if build.execution_arn:
                self._executor.stop(build.execution_arn, "stopped by a user")
            # as the ledger has it now: work a step recorded while the stop began is stopped too
            self._stop_work(done)
        self._notify("build.stopped", done)
        self.launch_next()
        return done

    # -- retrying -------------------------------------------------------------------------
    def retry(self, ref: str | int | None = None) -> Build:
        """Run a failed, interrupted or stopped build again from the step where it stopped, with the
        same inputs: the steps it finished keep their results (see :mod:`.steps.replay`). The build
        keeps its number; its ``attempt`` counts up.

        Raises:
            NotRetryable: it succeeded, is still queued or running, never started, or failed its
                gate (its model was judged, not broken). AlreadyRunning: another build runs.
        """
        ledger = self._ports.ledger
        build = ledger.get_build(ref)
        self._check_retryable(build)
        holder, active = self._launch_slot()
        if active is not None:
            raise AlreadyRunning(f"build {active.number} is running; retry build {build.number} when it ends")
        if not ledger.swap_state(ACTIVE_SLOT, holder, build.id):
            raise AlreadyRunning(f"another build is being launched this moment; retry build {build.number} "
                                 "in a moment")
        entry = replay.entry_step(build)
        self._run_again_from(build, entry)
        attempt = build.attempt + 1
        run = self._record_run(build, "retry", entry, attempt)
        ledger.update_build(build.id, status=BuildStatus.RUNNING, ended_at=None, failed_step=None,
                            failure_reason=None, error_type=None, current_step=entry, attempt=attempt)
        self._start_execution(ledger.get_build(build.id), run)
        logger.info("build retried", extra={"build": build.number, "attempt": attempt, "from": entry})
        return ledger.get_build(build.id)

    def _runs_of(self, build_id: str) -> builtins.list[dict[str, Any]]:
        """The executions of a build after its first: ``{"kind": "retry"|"resume", "at", "from", "attempt"}``."""
        raw = self._ports.ledger.get_state(f"runs:{build_id}")
        return json.loads(raw) if raw else []

    def resume(self, build: Build) -> Build:
        """Continue a build whose execution is gone (the engine that ran it died): a new execution
        of the same definition keeps the steps it finished and runs the one it was at again. It
        keeps its number and attempt; its record notes the resume. People hear of it once, when it ends."""
        ledger = self._ports.ledger
        entry = build.current_step if build.current_step in replay.ORDER else "Initialize"
        if entry == "Train" and self._training_goes_on(build):  # adopted, or ended while no engine ran:
            self._run_again_from(build, replay.ORDER[replay.ORDER.index("Train") + 1])  # Train waits on it again
        else:
            self._run_again_from(build, entry)
        ledger.set_state(ACTIVE_SLOT, build.id)
        run = self._record_run(build, "resume", entry, build.attempt)
        self._start_execution(ledger.get_build(build.id), run)
        logger.info("build resumed", extra={"build": build.number, "from": entry})
        return ledger.get_build(build.id)

    def _training_goes_on(self, build: Build) -> bool:
        """Whether a resumed build's training job still runs or ended well while no engine ran."""
        if not build.training_job or waits.current(self._ports, build.id, "training") is None:
            return False
        try:
            status = self._ports.training.describe_training_job(build.training_job)["TrainingJobStatus"]
        except NotFound:
            return False
        return status in ("InProgress", "Completed")

    def _check_retryable(self, build: Build) -> None:
        if build.status == BuildStatus.GATE_FAILED:
            raise NotRetryable(f"build {build.number} did not pass its gate: its model was judged, not broken, "
                               "so running it again would judge the same model; change the code, the data or "
                               "the gate and start a new build")
        if build.status not in _RETRYABLE:
            state = {BuildStatus.SUCCEEDED: "succeeded", BuildStatus.QUEUED: "is queued"}.get(build.status,
                                                                                           "is still running")
            raise NotRetryable(f"build {build.number} {state}: only a failed, interrupted or stopped build can be "
                               "retried")
        if build.config is None:
            raise NotRetryable(f"build {build.number} never started ({build.failure_reason or 'no config'}): "
                               "start a new build")

    def _run_again_from(self, build: Build, step: str) -> None:
        """``step`` and every later one run again: their kept outputs, waits and records go."""
        for wait in replay.forget_from(self._ports, build.id, step):
            waits.forget(self._ports, build.id, wait)
        self._ports.ledger.forget_steps(build.id, replay.steps_from(step))

    def _record_run(self, build: Build, kind: str, entry: str, attempt: int) -> int:
        """Note a later execution of ``build`` in its record; returns its run number (2, 3, ...)."""
        runs = self._runs_of(build.id)
        runs.append({"kind": kind, "at": self._clock(), "from": entry, "attempt": attempt})
        self._ports.ledger.set_state(f"runs:{build.id}", json.dumps(runs))
        return len(runs) + 1

    def _start_execution(self, build: Build, run: int) -> None:
        """Execution number ``run`` of a build (a retry, a resume): same input, a run-numbered name,
        the definition its config snapshot needs."""
        image_build = bool((build.config or {}).get("image", {}).get("build"))
        try:
            arn = self._executor.start(execution_name(build, run), {"build_id": build.id}, image_build=image_build)
        except SageBuildError as exc:
            done = self._ports.ledger.finish_build(build.id, BuildStatus.FAILED,
                                                   reason=f"the build could not start again: {exc}",
                                                   error_type=type(exc).__name__)
            self._notify("build.failed", done)
            raise
        self._ports.ledger.update_build(build.id, execution_arn=arn)

    def interrupt_running(self, reason: str, notify: bool) -> builtins.list[Build]:
        """The engine went (or goes) away: running builds end INTERRUPTED with ``reason``; their jobs
        and executions are stopped where they still exist."""
        interrupted = []
        for build in self._ports.ledger.list_builds(10_000, statuses=(BuildStatus.RUNNING,)):
            # ledger, execution, work: in the order of stop() and for the same reason
            done = self._ports.ledger.finish_build(build.id, BuildStatus.INTERRUPTED, reason=reason,
                                                   error_type="EngineInterrupted")
            if build.execution_arn:
                try:
                    self._executor.stop(build.execution_arn, reason)
                except SageBuildError:
                    logger.info("execution already gone", extra={"build": build.number})
            self._stop_work(done)
            interrupted.append(done)
            if notify:
                self._notify("build.interrupted", done)
        return interrupted

    # -- executions that ended ------------------------------------------------------------
    def execution_ended(self, execution_arn: str, status: str, cause: str | None = None,
                        error: str | None = None) -> Build | None:
        """An execution ended (EventBridge on AWS, the monitor locally): record it if no handler did,
        tell people once, then start the next build. Duplicate deliveries change nothing."""
        ended = self._record_end(execution_arn, status, cause, error)
        self.launch_next()
        return ended

    def reconcile(self) -> builtins.list[Build]:
        """Ask the executor about every running build; record the ends no handler recorded, stop
        training jobs whose build already ended, and launch the next build. Returns what it recorded."""
        self._reap_orphan_jobs()
        recorded = []
        for build in self._ports.ledger.list_builds(100, statuses=(BuildStatus.RUNNING,)):
            if not build.execution_arn:
                continue
            try:
                execution = self._executor.describe(build.execution_arn)
            except NotFound:
                continue  # an execution of an engine that died: start-up recovery records those
            if execution["status"] in EXECUTION_TO_BUILD:
                ended = self._record_end(build.execution_arn, execution["status"], execution.get("cause"),
                                         execution.get("error"))
                if ended is not None:
                    recorded.append(ended)
        self.launch_next()
        return recorded

    # -- reads (never wait) ---------------------------------------------------------------
    def get(self, ref: str | int | None = None) -> Build:
        """A build by number or id (the latest when None), with its later runs (retries, resumes)."""
        build = self._ports.ledger.get_build(ref)
        return dataclasses.replace(build, runs=self._runs_of(build.id))

    def list(self, limit: int = 20) -> builtins.list[Build]:
        return self._ports.ledger.list_builds(limit)

    def active(self) -> Build | None:
        """The build holding the launch slot, unless it has ended: "is a build running"."""
        return self._launch_slot()[1]

    def logs(self, ref: str | int | None = None, offset: int = 0) -> LogChunk:
        build = self._ports.ledger.get_build(ref)
        if not build.training_job:
            return LogChunk(text="", next_offset=offset, complete=build.done)
        return self._ports.training.read_log(build.training_job, offset)

    def history(self, ref: str | int | None = None) -> builtins.list[dict[str, Any]]:
        """The execution history (states entered and exited) of a build; [] once the executor forgot it."""
        build = self._ports.ledger.get_build(ref)
        if not build.execution_arn:
            return []
        try:
            return self._executor.history(build.execution_arn)
        except NotFound:
            return []

    def models(self, limit: int = 50) -> builtins.list[dict[str, Any]]:
        """Registered versions, newest first, with the periods each served."""
        return self._ports.ledger.list_models(limit)

    def live_at(self, when: float) -> dict[str, Any] | None:
        """The deployment that served the pipeline's endpoint at time ``when``."""
        return self._ports.ledger.live_at(self._ports.config.load()["deploy"]["endpoint"], when)

    def endpoints(self) -> builtins.list[EndpointInfo]:
        """This pipeline's endpoints (the configured one and any the registry recorded), with the
        version the registry says each serves."""
        try:
            configured = self._ports.config.load()["deploy"]["endpoint"]
        except ConfigError:
            configured = None
        out = []
        for summary in self._ports.hosting.list_endpoints():
            name = summary["EndpointName"]
            live = self._ports.ledger.live_deployment(name)
            if name != configured and live is None:
                continue  # another pipeline's endpoint in the same account
            desc = self._ports.hosting.describe_endpoint(name) or summary
            updated: Any = desc.get("LastModifiedTime")
            out.append(EndpointInfo(
                name=name, status=desc["EndpointStatus"], endpoint_config=desc.get("EndpointConfigName"),
                model_version=live["version"] if live else None, url=desc.get("Url"),
                updated_at=live["deployed_at"] if live else (updated.timestamp() if hasattr(updated, "timestamp")
                                                              else None),
                failure_reason=desc.get("FailureReason"), build_id=live["build_id"] if live else None))
        return out

    def invoke(self, endpoint: str, body: bytes, content_type: str, accept: str | None = None) -> tuple[int, bytes]:
        """Call an endpoint's model: (HTTP status, body)."""
        known = {e.name: e for e in self.endpoints()}
        if endpoint not in known:
            raise NotFound(f"no endpoint {endpoint!r} (endpoints: {', '.join(sorted(known)) or 'none yet'})")
        if known[endpoint].status not in ("InService", "Updating"):
            raise InvocationError(f"endpoint {endpoint} is {known[endpoint].status}, not InService")
        return self._ports.hosting.invoke_endpoint(endpoint, body, content_type, accept or "application/json")

    def plan_rollback(self, version: str | None = None) -> dict[str, Any]:
        """Which version a rollback would leave and which it would restore; changes nothing."""
        return rollbacks.plan_rollback(self._ports, version)

    # -- internals ------------------------------------------------------------------------
    def _start_config(self, reason: Any, hyperparameters: Any) -> dict[str, Any]:
        """The config a new build would run with: a reason is required, overrides validated, and the
        platform must be able to run it."""
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError("a build needs a reason: say why you start it")
        if not isinstance(hyperparameters or {}, dict):
            raise ConfigError("hyperparameters must be an object of name -> value")
        config = apply_overrides(self._ports.config.load(), hyperparameters or {})
        if config["image"]["build"] and self._ports.images is None:
            raise ConfigError("'image.build' is true, but the local platform trains with the engine's Python "
                              "and builds no images; set it to false locally (CodeBuild builds images on AWS)")
        return config

    def _queued_config_or_fail(self, build: Build) -> dict[str, Any] | None:
        """A queued build's config, checked again as it launches (the config may have changed since it
        was queued); if it no longer validates the build ends FAILED with the reason, and None."""
        try:
            return apply_overrides(self._ports.config.load(), build.hyperparameters)
        except ConfigError as exc:
            done = self._ports.ledger.finish_build(build.id, BuildStatus.FAILED, reason=str(exc),
                                                   error_type="ConfigError")
            self._notify("build.failed", done)
            return None

    def _launch(self, build: Build, config: dict[str, Any]) -> None:
        ledger = self._ports.ledger
        ledger.update_build(build.id, status=BuildStatus.RUNNING, started_at=self._clock())
        try:
            arn = self._executor.start(execution_name(build), {"build_id": build.id},
                                       image_build=bool(config["image"]["build"]))
        except ExecutionAlreadyExists:
            return  # a retried start: it runs already
        except SageBuildError as exc:
            done = ledger.finish_build(build.id, BuildStatus.FAILED, reason=f"the build could not start: {exc}",
                                       error_type=type(exc).__name__)
            self._notify("build.failed", done)
            raise
        ledger.update_build(build.id, execution_arn=arn)
        logger.info("build started", extra={"build": build.number, "execution": arn})
        self._notify("build.started", ledger.get_build(build.id))

    def _stop_work(self, build: Build) -> None:
        """Stop what a running build started: its image build, training job and endpoint update."""
        image = waits.current(self._ports, build.id, "image")  # answered: the image build has ended
        if build.image_build and not (image and image["status"] == "answered") and self._ports.images is not None:
            try:
                self._ports.images.stop_build(build.image_build)
            except SageBuildError:
                logger.warning("could not stop the image build", extra={"build": build.number}, exc_info=True)
        if build.training_job:
            self._ports.training.stop_training_job(build.training_job)
            self._await_job_end(build.training_job)
        if build.endpoint_name and build.endpoint_config:
            self._ports.hosting.cancel_update(build.endpoint_name, build.endpoint_config)

    def _await_job_end(self, job: str) -> None:
        """Locally a stopped job's process must be gone before the build is recorded stopped."""
        if self._stop_wait <= 0:
            return
        deadline = self._monotonic() + self._stop_wait
        while self._monotonic() < deadline:
            if self._ports.training.describe_training_job(job)["TrainingJobStatus"] not in ("InProgress", "Stopping"):
                return
            self._sleep(0.05)
        logger.warning("training job still stopping after the grace period", extra={"job": job})

    def _record_end(self, execution_arn: str, status: str, cause: str | None, error: str | None) -> Build | None:
        target = EXECUTION_TO_BUILD.get(status)
        build = self._build_or_none(build_id_of_execution(execution_arn))
        if build is not None and build.execution_arn and build.execution_arn != execution_arn:
            return None  # an earlier execution of a retried build: the build runs on in a newer one
        if build is None or target is None or build.done:
            if build is None:
                logger.warning("no build for execution", extra={"execution": execution_arn})
            return None
        ended = self._ports.ledger.finish_build(build.id, target, reason=cause or error, error_type=error)
        if ended.status == target:
            self._notify(_END_EVENT[target], ended)
        return ended

    def _reap_orphan_jobs(self) -> None:
        """A Task in flight when a build was stopped may still start its job: stop such jobs.
        Asks the platform first (one query, usually nothing)."""
        training = self._ports.training
        active = training.active_jobs()
        if not active:
            return
        for build in self._ports.ledger.list_builds(20):
            if build.done and build.training_job in active:
                logger.warning("stopping a training job whose build already ended",
                               extra={"build": build.number, "job": build.training_job})
                training.stop_training_job(build.training_job)

    def _join_queued(self, triggers: builtins.list[dict[str, Any]]) -> tuple[Build | None, str | None]:
        """Join the one queued build automatic triggers share, or take the queue slot to make it.

        Returns (the build joined, None) or (None, the slot token the caller swaps for its new
        build's id). The slot is a compare-and-swap in the ledger, so concurrent launchers agree
        on one queued build; a claim left by a process that died is taken over after 30 s.
        """
        ledger = self._ports.ledger
        for _ in range(200):
            holder = ledger.get_state(QUEUE_SLOT)
            holder_build: Build | None
            if holder and holder.startswith("pending:"):
                if self._clock() - float(holder.split(":")[1]) < _PENDING_TAKEOVER_SECONDS:
                    self._sleep(0.05)  # another launcher is creating the queued build right now
                    continue
                holder_build = None
            else:
                holder_build = self._joinable(holder)
            if holder_build is None:  # no slot yet, or its build started: adopt a queued build
                existing = next((b for b in ledger.list_builds(20, statuses=(BuildStatus.QUEUED,))
                                 if not b.hyperparameters), None)
                if existing is not None and ledger.swap_state(QUEUE_SLOT, holder, existing.id):
                    holder_build = existing
                elif existing is not None:
                    continue
            if holder_build is not None:
                ledger.add_triggers(holder_build.id, triggers)
                self._rename_for_triggers(holder_build.id)
                return ledger.get_build(holder_build.id), None
            token = f"pending:{self._clock():.3f}:{uuid.uuid4().hex[:8]}"
            if ledger.swap_state(QUEUE_SLOT, holder, token):
                return None, token
        raise TransientError("the queue slot kept changing; the trigger will be retried")

    def _rename_for_triggers(self, build_id: str) -> None:
        """The queued build's reason names all its triggers. Joiners write it at the same moment, so
        each checks after writing that no trigger arrived meanwhile (the last one's write stands)."""
        ledger = self._ports.ledger
        seen = ledger.triggers_of(build_id)
        for _ in range(20):
            ledger.update_build(build_id, reason=combined_reason(seen))
            now = ledger.triggers_of(build_id)
            if len(now) == len(seen):
                return
            seen = now

    def _build_or_none(self, build_id: str | None) -> Build | None:
        if not build_id:
            return None
        try:
            return self._ports.ledger.get_build(build_id)
        except NotFound:
            return None

    def _joinable(self, build_id: str | None) -> Build | None:
        """The queue slot's build, while it is still queued and runs the config as it is."""
        build = self._build_or_none(build_id)
        return build if build is not None and build.status == BuildStatus.QUEUED and not build.hyperparameters else None

    def _launch_slot(self) -> tuple[str | None, Build | None]:
        """Who holds the launch slot (a build id), and that build unless it has ended."""
        holder = self._ports.ledger.get_state(ACTIVE_SLOT)
        build = self._build_or_none(holder)
        return holder, (build if build is not None and not build.done else None)

    def _latest_active(self) -> Build:
        for status in (BuildStatus.RUNNING, BuildStatus.QUEUED):
            found = self._ports.ledger.list_builds(1, statuses=(status,))
            if found:
                return found[0]
        raise NothingToStop("no build is running or queued")

    def _notify(self, event: str, build: Build) -> None:
        live = self._ports.ledger.live_deployment(build.endpoint_name) if build.endpoint_name else None
        try:
            self._ports.notifier.publish(event, notification_payload(build, live))
        except Exception:  # a failing sink never fails the action that notifies
            logger.exception("notification failed", extra={"event": event})
