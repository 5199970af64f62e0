"""Builds port straight from the ledger file, for when no engine runs: reads work, changes don't.

What the ledger records (builds, logs, models, deployments) is answered; what only a running
engine has (execution histories, invocations, starts, stops, rollbacks) raises
:class:`EngineNotRunning` saying how to start it. Endpoints are the ledger's live deployments,
``OutOfService`` because nothing serves them until ``sagebuild up`` restores them.
"""
from __future__ import annotations

import builtins

from pathlib import Path
from typing import Any

from ...errors import EngineNotRunning
from ...model import Build, EndpointInfo, LogChunk
from .ledger import SqliteLedger

__all__ = ["LedgerBuilds", "NOT_SERVING"]

NOT_SERVING = "the engine is not running: `sagebuild up` serves it again"


class LedgerBuilds:
    """Read-only view of a project's builds; ``start``/``stop`` say how to start the engine."""

    def __init__(self, ledger_path: str, jobs_dir: str) -> None:
        self._ledger = SqliteLedger(ledger_path, readonly=True)
        self._jobs = Path(jobs_dir)

    def start(self, reason: str, source: str = "cli", hyperparameters: dict[str, Any] | None = None) -> Build:
        raise EngineNotRunning("the engine is not running: start it with `sagebuild up` in the project folder")

    def stop(self, ref: str | int | None = None) -> Build:
        raise EngineNotRunning("the engine is not running, so no build is running either")

    def retry(self, ref: str | int | None = None) -> Build:
        build = self._ledger.get_build(ref)
        raise EngineNotRunning(f"the engine is not running: start it with `sagebuild up`, then retry build "
                               f"#{build.number}")

    def get(self, ref: str | int | None = None) -> Build:
        return self._ledger.get_build(ref)

    def list(self, limit: int = 20) -> builtins.list[Build]:
        return self._ledger.list_builds(limit)

    def logs(self, ref: str | int | None = None, offset: int = 0) -> LogChunk:
        build = self._ledger.get_build(ref)
        path = self._jobs / (build.training_job or "") / "job.log"
        if not build.training_job or not path.exists():
            return LogChunk("", offset, True)
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
        return LogChunk(data.decode("utf-8", "replace"), offset + len(data), True)

    def endpoints(self) -> builtins.list[EndpointInfo]:
        """Each endpoint the ledger deployed to, with the version deployed there, ``OutOfService``."""
        out, seen = [], set()
        for deployment in self._ledger.deployments():  # newest first
            name = deployment["endpoint"]
            if name in seen:
                continue
            seen.add(name)
            live = self._ledger.live_deployment(name)
            if live is None:
                continue  # deleted, or replaced with nothing
            out.append(EndpointInfo(name=name, status="OutOfService", endpoint_config=live["endpoint_config"],
                                    model_version=live["version"], url=None, updated_at=live["deployed_at"],
                                    failure_reason=NOT_SERVING, build_id=live["build_id"]))
        return out

    def history(self, ref: str | int | None = None) -> builtins.list[dict[str, Any]]:
        build = self._ledger.get_build(ref)  # an unknown build is still BuildNotFound
        raise EngineNotRunning(f"the engine is not running, and build #{build.number}'s execution history is the "
                               "engine's: start it with `sagebuild up` (`sagebuild status` shows the steps from "
                               "the ledger)")

    def invoke(self, endpoint: str, body: bytes, content_type: str, accept: str | None = None) -> tuple[int, bytes]:
        raise EngineNotRunning(f"the engine is not running, so no endpoint serves {endpoint!r}: start it with "
                               "`sagebuild up`")

    def models(self, limit: int = 50) -> builtins.list[dict[str, Any]]:
        return self._ledger.list_models(limit)

    def live_at(self, when: float) -> dict[str, Any] | None:
        latest = self._ledger.deployments()
        return self._ledger.live_at(latest[0]["endpoint"], when) if latest else None

    def plan_rollback(self, version: str | None = None) -> dict[str, Any]:
        raise EngineNotRunning("the engine is not running: start it with `sagebuild up` to roll back")

    def rollback(self, version: str | None = None) -> EndpointInfo:
        raise EngineNotRunning("the engine is not running: start it with `sagebuild up` to roll back")
