"""What both Builds adapters (the local engine's and Step Functions') do the same way: read
builds, logs and the registry from the ports, record rejected triggers, tell people."""
from __future__ import annotations

import builtins
import logging
from typing import Any

from . import rollbacks
from .errors import ConfigError, NothingToStop
from .model import Build, BuildStatus, LogChunk
from .ports import Ports
from .steps.handlers import apply_overrides, notification_payload

__all__ = ["LedgerBackedBuilds", "EXECUTION_TO_BUILD"]

logger = logging.getLogger(__name__)

# A state machine execution's end -> the build's, for ends no handler recorded.
EXECUTION_TO_BUILD = {"SUCCEEDED": BuildStatus.SUCCEEDED, "FAILED": BuildStatus.FAILED,
                      "TIMED_OUT": BuildStatus.FAILED, "ABORTED": BuildStatus.ABORTED}


class LedgerBackedBuilds:
    """Base of the Builds adapters: the ledger is the truth, the ports do the work."""

    _ports: Ports

    def _start_config(self, reason: Any, hyperparameters: Any) -> dict[str, Any]:
        """The config a new build would run with: a reason is required, overrides validated."""
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError("a build needs a reason: say why you start it")
        if not isinstance(hyperparameters or {}, dict):
            raise ConfigError("hyperparameters must be an object of name -> value")
        return apply_overrides(self._ports.config.load(), hyperparameters or {})

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

    def get(self, ref: str | int | None = None) -> Build:
        return self._ports.ledger.get_build(ref)

    def list(self, limit: int = 20) -> builtins.list[Build]:
        return self._ports.ledger.list_builds(limit)

    def logs(self, ref: str | int | None = None, offset: int = 0) -> LogChunk:
        build = self._ports.ledger.get_build(ref)
        if not build.training_job:
            return LogChunk(text="", next_offset=offset, complete=build.done)
        return self._ports.training.read_log(build.training_job, offset)

    def models(self, limit: int = 50) -> builtins.list[dict[str, Any]]:
        """Registered versions, newest first, with the periods each served."""
        return self._ports.ledger.list_models(limit)

    def live_at(self, when: float) -> dict[str, Any] | None:
        """The deployment that served the pipeline's endpoint at time ``when``."""
        return self._ports.ledger.live_at(self._ports.config.load()["deploy"]["endpoint"], when)

    def plan_rollback(self, version: str | None = None) -> dict[str, Any]:
        """Which version a rollback would leave and which it would restore; changes nothing."""
        return rollbacks.plan_rollback(self._ports, version)

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
