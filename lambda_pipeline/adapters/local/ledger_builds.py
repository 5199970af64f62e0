"""Builds port straight from the ledger file, for when no engine runs: reads work, changes don't."""
from __future__ import annotations

import builtins

from pathlib import Path
from typing import Any

from ...errors import EngineNotRunning
from ...model import Build, EndpointInfo, LogChunk
from .ledger import SqliteLedger

__all__ = ["LedgerBuilds"]


class LedgerBuilds:
    """Read-only view of a project's builds; ``start``/``stop`` say how to start the engine."""

    def __init__(self, ledger_path: str, jobs_dir: str) -> None:
        self._ledger = SqliteLedger(ledger_path, readonly=True)
        self._jobs = Path(jobs_dir)

    def start(self, reason: str, source: str = "cli", hyperparameters: dict[str, Any] | None = None) -> Build:
        raise EngineNotRunning("the engine is not running: start it with `sagebuild up` in the project folder")

    def stop(self, ref: str | int | None = None) -> Build:
        raise EngineNotRunning("the engine is not running, so no build is running either")

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
        return []

    def history(self, ref: str | int | None = None) -> builtins.list[dict[str, Any]]:
        return []

    def models(self, limit: int = 50) -> builtins.list[dict[str, Any]]:
        return self._ledger.list_models(limit)

    def live_at(self, when: float) -> dict[str, Any] | None:
        latest = self._ledger.deployments()
        return self._ledger.live_at(latest[0]["endpoint"], when) if latest else None

    def plan_rollback(self, version: str | None = None) -> dict[str, Any]:
        raise EngineNotRunning("the engine is not running: start it with `sagebuild up` to roll back")

    def rollback(self, version: str | None = None) -> EndpointInfo:
        raise EngineNotRunning("the engine is not running: start it with `sagebuild up` to roll back")
