"""Builds port on Step Functions: what the skill (on Lambda), the launch Lambdas and the notebook
client (``SageBuild.from_stack``) do with builds on AWS.

The DynamoDB ledger is the truth, as locally. Executions run builds; nothing polls: the stack's
EventBridge rules call :meth:`StepFunctionsBuilds.execution_ended` when an execution ends (to
record ends no handler recorded, and to start the next queued build) and
:func:`lambda_pipeline.rollbacks.complete_from_event` when the endpoint changes state.
"""
from __future__ import annotations

import builtins
import datetime
import logging
import time
import uuid
from typing import Any, Callable

from ... import rollbacks
from ...errors import AlreadyRunning, NothingToStop, NotFound, TransientError
from ...model import Build, BuildStatus, EndpointInfo
from ...ports import Ports
from ...builds_base import EXECUTION_TO_BUILD, LedgerBackedBuilds
from .boto import client as _client, error_code, translate

__all__ = ["StepFunctionsBuilds", "execution_name"]

logger = logging.getLogger(__name__)

ACTIVE_SLOT = "launch-slot"  # ledger state: the id of the build that runs (or is being launched)
QUEUE_SLOT = "queue-slot"  # ledger state: the queued build automatic triggers join


def execution_name(build: Build) -> str:
    """``build-<number>-<id>``: unique per build, so a retried start cannot run it twice."""
    return f"build-{build.number}-{build.id}"[:80]


class StepFunctionsBuilds(LedgerBackedBuilds):
    """The Builds port over one stack's state machine and ledger.

    Args:
        ports: the AWS adapters (``lambda_entry.ports_from_environment``).
        state_machine_arn: the stack's build state machine.
    """

    def __init__(self, ports: Ports, state_machine_arn: str, boto3_client: Any = None, boto3_session: Any = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._ports = ports
        self._sfn = _client("stepfunctions", boto3_client, boto3_session)
        self.state_machine_arn = state_machine_arn
        self._clock = clock

    @property
    def ports(self) -> Ports:
        return self._ports

    # -- Builds port ----------------------------------------------------------------------
    def start(self, reason: str, source: str = "cli", hyperparameters: dict[str, Any] | None = None,
              triggers: builtins.list[dict[str, Any]] | None = None, always_queue: bool = False) -> Build:
        """Validate, then run the build or queue it behind the running one.

        Automatic triggers pass ``always_queue``: they queue even where people are refused, and
        join the one queued build if there is one (its reason lists them all).
        """
        config = self._start_config(reason, hyperparameters)
        hyperparameters = hyperparameters or {}
        ledger = self._ports.ledger
        triggers = triggers or [{"source": source, "reason": reason.strip()}]
        running = self._active()
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
            ledger.swap_state(QUEUE_SLOT, token, build.id)  # type: ignore[attr-defined]
        # Oldest first: this build, or one queued before it whose launch an ending build's event
        # missed (it ended a moment before that build was queued).
        self.launch_next()
        return ledger.get_build(build.id)

    def stop(self, ref: str | int | None = None) -> Build:
        """Stop a queued or running build: its training job and execution end, the endpoint stays."""
        ledger = self._ports.ledger
        build = ledger.get_build(ref) if ref is not None else self._latest_active()
        if build.done:
            raise NothingToStop(f"build {build.number} already ended ({build.status.lower()})")
        if build.status == BuildStatus.RUNNING:
            if build.training_job:
                self._ports.training.stop_training_job(build.training_job)
            if build.execution_arn:
                try:
                    self._sfn.stop_execution(executionArn=build.execution_arn, error="Stopped",
                                             cause="stopped by a user")
                except Exception as exc:
                    if error_code(exc) != "ExecutionDoesNotExist":
                        raise translate(exc, f"could not stop build {build.number}") from exc
        done = ledger.finish_build(build.id, BuildStatus.ABORTED, reason="stopped by a user", error_type="Stopped")
        self._notify("build.stopped", done)
        return done

    def endpoints(self) -> builtins.list[EndpointInfo]:
        """The stack's endpoint (one per stack), with the version the registry says it serves."""
        name = self._ports.config.load()["deploy"]["endpoint"]
        desc = self._ports.hosting.describe_endpoint(name)
        if desc is None:
            return []
        live = self._ports.ledger.live_deployment(name)
        updated = desc.get("LastModifiedTime")
        return [EndpointInfo(name=name, status=desc["EndpointStatus"], endpoint_config=desc.get("EndpointConfigName"),
                             model_version=live["version"] if live else None, url=None,
                             updated_at=updated.timestamp() if isinstance(updated, datetime.datetime) else None,
                             failure_reason=desc.get("FailureReason"), build_id=live["build_id"] if live else None)]

    def rollback(self, version: str | None = None) -> EndpointInfo:
        """Start the swap back and return at once (SageMaker takes minutes; Alexa waits 8 s).

        The result has status ``Updating`` and the version being restored; the endpoint's
        state-change event records the deployment and notifies when it serves.
        """
        plan, config_name = rollbacks.begin_rollback(self._ports, version, self._clock())
        return EndpointInfo(name=plan["endpoint"], status="Updating", endpoint_config=config_name,
                            model_version=plan["to"], url=None, updated_at=self._clock())

    # -- events ---------------------------------------------------------------------------
    def execution_ended(self, execution_arn: str, status: str, cause: str | None = None,
                        error: str | None = None) -> Build | None:
        """An execution ended (EventBridge): record it if no handler did, then start the next build."""
        ended = None
        build = self._build_of(execution_arn)
        target = EXECUTION_TO_BUILD.get(status)
        if build is not None and target is not None and not build.done:
            ended = self._ports.ledger.finish_build(build.id, target, reason=cause or error, error_type=error)
            self._notify("build.stopped" if target == BuildStatus.ABORTED else "build.failed", ended)
        self.launch_next()
        return ended

    def launch_next(self) -> Build | None:
        """Start the oldest queued build if none runs (and no other Lambda starts one this moment)."""
        ledger = self._ports.ledger
        holder, active = self._launch_slot()
        if active is not None:
            return None
        queued = ledger.list_builds(10_000, statuses=(BuildStatus.QUEUED,))
        if not queued:
            return None
        build = queued[-1]
        # One compare-and-swap: of Lambdas launching at the same moment exactly one wins; the rest stay queued.
        if not ledger.swap_state(ACTIVE_SLOT, holder, build.id):  # type: ignore[attr-defined]
            return None
        if self._queued_config_or_fail(build) is not None:
            self._launch(build)
        return ledger.get_build(build.id)

    # -- internals ------------------------------------------------------------------------
    def _launch(self, build: Build) -> None:
        ledger = self._ports.ledger
        ledger.update_build(build.id, status=BuildStatus.RUNNING, started_at=self._clock())
        try:
            answer = self._sfn.start_execution(stateMachineArn=self.state_machine_arn, name=execution_name(build),
                                               input=f'{{"build_id": "{build.id}"}}')
        except Exception as exc:
            if error_code(exc) == "ExecutionAlreadyExists":  # a retried start: it runs already
                return
            done = ledger.finish_build(build.id, BuildStatus.FAILED, reason=f"the build could not start: {exc}",
                                       error_type=error_code(exc))
            self._notify("build.failed", done)
            raise translate(exc, f"could not start build {build.number}") from exc
        ledger.update_build(build.id, execution_arn=answer["executionArn"])
        logger.info("build started", extra={"build": build.number, "execution": answer["executionArn"]})
        self._notify("build.started", ledger.get_build(build.id))

    def _join_queued(self, triggers: builtins.list[dict[str, Any]]) -> tuple[Build | None, str | None]:
        """Join the one queued build automatic triggers share, or take the queue slot to make it.

        Returns (the build joined, None) or (None, the slot token the caller swaps for its new
        build's id). The slot is a compare-and-swap in the ledger, so concurrent launch Lambdas
        agree on one queued build; a token left by a Lambda that died is taken over after 30 s.
        """
        ledger = self._ports.ledger
        for _ in range(100):
            holder = ledger.get_state(QUEUE_SLOT)
            if holder and holder.startswith("pending:"):
                if self._clock() - float(holder.split(":")[1]) < 30:
                    time.sleep(0.05)  # another Lambda is creating the queued build right now
                    continue
                holder_build = None
            else:
                holder_build = self._queued(holder)
            if holder_build is None:  # no slot yet, or its build started: adopt a queued build
                existing = ledger.list_builds(1, statuses=(BuildStatus.QUEUED,))
                if existing and ledger.swap_state(QUEUE_SLOT, holder, existing[0].id):  # type: ignore[attr-defined]
                    holder_build = existing[0]
                elif existing:
                    continue
            if holder_build is not None:
                ledger.add_triggers(holder_build.id, triggers)
                reasons = [t["reason"] for t in ledger.triggers_of(holder_build.id)]
                ledger.update_build(holder_build.id, reason="; ".join(reasons))
                return ledger.get_build(holder_build.id), None
            token = f"pending:{self._clock():.3f}:{uuid.uuid4().hex[:8]}"
            if ledger.swap_state(QUEUE_SLOT, holder, token):  # type: ignore[attr-defined]
                return None, token
        raise TransientError("the queue slot kept changing; the trigger will be retried")

    def _build_or_none(self, build_id: str | None) -> Build | None:
        if not build_id:
            return None
        try:
            return self._ports.ledger.get_build(build_id)
        except NotFound:
            return None

    def _queued(self, build_id: str | None) -> Build | None:
        build = self._build_or_none(build_id)
        return build if build is not None and build.status == BuildStatus.QUEUED else None

    def _launch_slot(self) -> tuple[str | None, Build | None]:
        """Who holds the launch slot (a build id), and that build unless it has ended."""
        holder = self._ports.ledger.get_state(ACTIVE_SLOT)
        build = self._build_or_none(holder)
        return holder, (build if build is not None and not build.done else None)

    def _active(self) -> Build | None:
        """The build holding the launch slot, unless it has ended."""
        return self._launch_slot()[1]

    def _build_of(self, execution_arn: str) -> Build | None:
        name = execution_arn.rsplit(":", 1)[-1]
        if not name.startswith("build-"):
            return None
        try:
            return self._ports.ledger.get_build(name.split("-", 2)[2])
        except Exception:
            logger.warning("no build for execution", extra={"execution": execution_arn})
            return None
