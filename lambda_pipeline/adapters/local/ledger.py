"""The build ledger and model registry in SQLite: the durable truth of the local mode."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any, Callable

from ...errors import BuildNotFound
from ...model import Build, BuildStatus, StepRecord
from ...registry import previous_good_version
from .db import Database

__all__ = ["SqliteLedger"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS builds (
  id TEXT PRIMARY KEY, number INTEGER UNIQUE NOT NULL, pipeline TEXT NOT NULL,
  status TEXT NOT NULL, trigger_source TEXT NOT NULL, reason TEXT NOT NULL,
  created_at REAL NOT NULL, version TEXT, started_at REAL, ended_at REAL,
  current_step TEXT, failed_step TEXT, failure_reason TEXT, error_type TEXT,
  metrics TEXT NOT NULL DEFAULT '{}', hyperparameters TEXT NOT NULL DEFAULT '{}', config TEXT,
  training_job TEXT, model_artifact TEXT, endpoint_name TEXT, endpoint_config TEXT,
  execution_arn TEXT, image_build TEXT, attempt INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS steps (
  build_id TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
  started_at REAL NOT NULL, ended_at REAL, detail TEXT, seq INTEGER NOT NULL,
  PRIMARY KEY (build_id, name)
);
CREATE TABLE IF NOT EXISTS models (
  version TEXT PRIMARY KEY, build_id TEXT NOT NULL, artifact TEXT NOT NULL, code TEXT,
  metrics TEXT NOT NULL, config TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS triggers (
  id INTEGER PRIMARY KEY AUTOINCREMENT, build_id TEXT NOT NULL, source TEXT NOT NULL, reason TEXT NOT NULL,
  details TEXT NOT NULL DEFAULT '{}', received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS triggers_by_build ON triggers (build_id);
CREATE TABLE IF NOT EXISTS trigger_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deployments (
  id INTEGER PRIMARY KEY AUTOINCREMENT, endpoint TEXT NOT NULL, version TEXT NOT NULL,
  endpoint_config TEXT NOT NULL, build_id TEXT, deployed_at REAL NOT NULL, replaced_at REAL
);
"""

_JSON_FIELDS = ("metrics", "hyperparameters", "config")
_COLUMNS = ("reason", "trigger_source", "version", "status", "started_at", "ended_at", "current_step", "failed_step",
            "failure_reason", "error_type", "metrics", "hyperparameters", "config", "training_job",
            "model_artifact", "endpoint_name", "endpoint_config", "execution_arn", "image_build", "attempt")


class SqliteLedger:
    """Ledger port on SQLite (WAL). Safe to share between threads; other processes may read.

    Args:
        path: database file; created with its schema if missing.
        clock: returns the current time in seconds (injectable for tests).
        readonly: open for reading only (the CLI when no engine runs).
    """

    def __init__(self, path: str, clock: Callable[[], float] = time.time, readonly: bool = False) -> None:
        self._db = Database(path, _SCHEMA, readonly=readonly)
        if not readonly:
            self._db.ensure_columns("builds", {"image_build": "TEXT", "attempt": "INTEGER NOT NULL DEFAULT 1"})
            self._db.ensure_columns("models", {"data_refs": "TEXT", "source_ref": "TEXT"})
            self._db.ensure_columns("deployments", {"kind": "TEXT NOT NULL DEFAULT 'build'",
                                                    "rolled_back_reason": "TEXT"})
        self._clock = clock

    # -- builds ---------------------------------------------------------------------------
    def create_build(self, pipeline: str, trigger_source: str, reason: str,
                     hyperparameters: dict[str, Any] | None = None,
                     status: str = BuildStatus.QUEUED) -> Build:
        # Ids always start with a letter so they never read as a build number.
        build_id = "b" + uuid.uuid4().hex[:11]
        with self._db.transaction() as conn:
            number = conn.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM builds").fetchone()[0]
            conn.execute(
                "INSERT INTO builds (id, number, pipeline, status, trigger_source, reason, created_at,"
                " hyperparameters) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (build_id, number, pipeline, status, trigger_source, reason, self._clock(),
                 json.dumps(hyperparameters or {})))
        return self.get_build(build_id)

    def get_build(self, ref: str | int | None = None) -> Build:
        """A build by id, number (int or digit string), or the latest when ``ref`` is None."""
        if ref is None or ref == "latest":
            rows = self._db.query("SELECT * FROM builds ORDER BY number DESC LIMIT 1")
            if not rows:
                raise BuildNotFound("there are no builds yet: start one with `sagebuild start`")
        else:
            text = str(ref).lstrip("#")
            if text.isdigit():
                rows = self._db.query("SELECT * FROM builds WHERE number = ?", (int(text),))
            else:
                rows = self._db.query("SELECT * FROM builds WHERE id = ?", (text,))
            if not rows:
                raise BuildNotFound(f"no build {text!r}: give a build number (e.g. 3) or id")
        return self._to_build(rows[0])

    def list_builds(self, limit: int = 20, statuses: tuple[str, ...] | None = None) -> list[Build]:
        if statuses:
            marks = ",".join("?" * len(statuses))
            rows = self._db.query(f"SELECT * FROM builds WHERE status IN ({marks}) ORDER BY number DESC LIMIT ?",
                                  (*statuses, limit))
        else:
            rows = self._db.query("SELECT * FROM builds ORDER BY number DESC LIMIT ?", (limit,))
        return [self._to_build(r) for r in rows]

    def update_build(self, build_id: str, **fields: Any) -> None:
        unknown = set(fields) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown build fields: {sorted(unknown)}")
        values = [json.dumps(v) if k in _JSON_FIELDS and v is not None else v for k, v in fields.items()]
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._db.transaction() as conn:
            conn.execute(f"UPDATE builds SET {assignments} WHERE id = ?", (*values, build_id))

    def forget_steps(self, build_id: str, steps: list[str]) -> None:
        """Drop these step records (a retried build runs them again)."""
        if not steps:
            return
        with self._db.transaction() as conn:
            conn.execute(f"DELETE FROM steps WHERE build_id = ? AND name IN ({','.join('?' * len(steps))})",
                         (build_id, *steps))

    def begin_step(self, build_id: str, step: str, detail: str | None = None, recovery: bool = False) -> None:
        """A step starts. A ``recovery`` step (a rollback after a failure) leaves ``current_step``
        alone, so the failed step stays the one that failed."""
        now = self._clock()
        with self._db.transaction() as conn:
            seq = conn.execute("SELECT COUNT(*) FROM steps WHERE build_id = ?", (build_id,)).fetchone()[0]
            conn.execute("INSERT OR REPLACE INTO steps (build_id, name, status, started_at, detail, seq)"
                         " VALUES (?, ?, 'RUNNING', ?, ?, ?)", (build_id, step, now, detail, seq))
            if not recovery:
                conn.execute("UPDATE builds SET current_step = ? WHERE id = ?", (step, build_id))

    def end_step(self, build_id: str, step: str, status: str = "SUCCEEDED", detail: str | None = None) -> None:
        with self._db.transaction() as conn:
            conn.execute("UPDATE steps SET status = ?, ended_at = ?, detail = COALESCE(?, detail)"
                         " WHERE build_id = ? AND name = ? AND ended_at IS NULL",
                         (status, self._clock(), detail, build_id, step))

    def finish_build(self, build_id: str, status: str, reason: str | None = None,
                     error_type: str | None = None) -> Build:
        """End a build once: the first terminal status wins, later calls change nothing."""
        now = self._clock()
        with self._db.transaction() as conn:
            row = conn.execute("SELECT status, current_step FROM builds WHERE id = ?", (build_id,)).fetchone()
            if row is None:
                raise BuildNotFound(f"no build {build_id!r}")
            if row["status"] in (BuildStatus.QUEUED, BuildStatus.RUNNING):
                failed_step = row["current_step"] if status != BuildStatus.SUCCEEDED else None
                conn.execute("UPDATE builds SET status = ?, ended_at = ?, failure_reason = ?, error_type = ?,"
                             " failed_step = ? WHERE id = ?",
                             (status, now, reason, error_type, failed_step, build_id))
                step_status = "SUCCEEDED" if status == BuildStatus.SUCCEEDED else status
                conn.execute("UPDATE steps SET status = ?, ended_at = ? WHERE build_id = ? AND ended_at IS NULL",
                             (step_status, now, build_id))
                if failed_step is not None:
                    conn.execute("UPDATE steps SET status = ? WHERE build_id = ? AND name = ?",
                                 (step_status, build_id, failed_step))
        return self.get_build(build_id)

    # -- triggers -------------------------------------------------------------------------
    def add_triggers(self, build_id: str, triggers: list[dict[str, Any]]) -> None:
        """Record what caused a build: every trigger, with its source, reason and details."""
        with self._db.transaction() as conn:
            conn.executemany("INSERT INTO triggers (build_id, source, reason, details, received_at) VALUES (?, ?, ?, ?, ?)",
                             [(build_id, t["source"], t["reason"], json.dumps(t.get("details") or {}),
                               t.get("received_at") or self._clock()) for t in triggers])

    def triggers_of(self, build_id: str) -> list[dict[str, Any]]:
        rows = self._db.query("SELECT source, reason, details, received_at FROM triggers WHERE build_id = ? ORDER BY id",
                              (build_id,))
        return [{**dict(r), "details": json.loads(r["details"])} for r in rows]

    def get_state(self, key: str) -> str | None:
        rows = self._db.query("SELECT value FROM trigger_state WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_state(self, key: str, value: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("INSERT INTO trigger_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE"
                         " SET value = excluded.value", (key, value))

    def swap_state(self, key: str, expected: str | None, value: str) -> bool:
        """Compare-and-swap: set ``key`` to ``value`` only if it still holds ``expected`` (None: only
        if unset). ``BEGIN IMMEDIATE`` takes the write lock first, so of processes and threads
        swapping at the same moment exactly one sees ``expected``."""
        with self._db.transaction() as conn:
            row = conn.execute("SELECT value FROM trigger_state WHERE key = ?", (key,)).fetchone()
            if (row["value"] if row else None) != expected:
                return False
            conn.execute("INSERT INTO trigger_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE"
                         " SET value = excluded.value", (key, value))
            return True

    # -- registry -------------------------------------------------------------------------
    def register_model(self, version: str, build_id: str, artifact: str, code: str | None,
                       metrics: dict[str, float], config: dict[str, Any], data_refs: dict[str, Any] | None = None,
                       source_ref: dict[str, Any] | None = None) -> None:
        """Remember a version: its artifact, code, metrics, config snapshot, data and source."""
        with self._db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO models (version, build_id, artifact, code, metrics, config, created_at,"
                         " data_refs, source_ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (version, build_id, artifact, code, json.dumps(metrics), json.dumps(config), self._clock(),
                          json.dumps(data_refs or {}), json.dumps(source_ref or {})))

    def get_model(self, version: str) -> dict[str, Any] | None:
        rows = self._db.query("SELECT * FROM models WHERE version = ?", (version,))
        return _model(rows[0]) if rows else None

    def list_models(self, limit: int = 50) -> list[dict[str, Any]]:
        """Registered versions, newest first, each with the periods it served."""
        models = [_model(r) for r in self._db.query("SELECT * FROM models ORDER BY created_at DESC LIMIT ?", (limit,))]
        for model in models:
            model["deployments"] = self.deployments(version=model["version"])
        return models

    def record_deployment(self, endpoint: str, version: str, endpoint_config: str,
                          build_id: str | None, kind: str = "build") -> None:
        """A version starts serving: the one serving until now is replaced at this moment."""
        now = self._clock()
        with self._db.transaction() as conn:
            conn.execute("UPDATE deployments SET replaced_at = ? WHERE endpoint = ? AND replaced_at IS NULL",
                         (now, endpoint))
            conn.execute("INSERT INTO deployments (endpoint, version, endpoint_config, build_id, deployed_at, kind)"
                         " VALUES (?, ?, ?, ?, ?, ?)", (endpoint, version, endpoint_config, build_id, now, kind))

    def mark_rolled_back(self, endpoint: str, endpoint_config: str, reason: str) -> None:
        """The deployment of ``endpoint_config`` was undone because it failed its checks."""
        with self._db.transaction() as conn:
            conn.execute("UPDATE deployments SET rolled_back_reason = ? WHERE endpoint = ? AND endpoint_config = ?",
                         (reason, endpoint, endpoint_config))

    def live_deployment(self, endpoint: str) -> dict[str, Any] | None:
        rows = self._db.query("SELECT * FROM deployments WHERE endpoint = ? AND replaced_at IS NULL"
                              " ORDER BY id DESC LIMIT 1", (endpoint,))
        return dict(rows[0]) if rows else None

    def live_at(self, endpoint: str, when: float) -> dict[str, Any] | None:
        """The deployment that served ``endpoint`` at time ``when`` (None before the first one)."""
        rows = self._db.query("SELECT * FROM deployments WHERE endpoint = ? AND deployed_at <= ?"
                              " AND (replaced_at IS NULL OR replaced_at > ?) ORDER BY id DESC LIMIT 1",
                              (endpoint, when, when))
        return dict(rows[0]) if rows else None

    def deployments(self, endpoint: str | None = None, version: str | None = None,
                    build_id: str | None = None) -> list[dict[str, Any]]:
        """Deployment periods, newest first, filtered by endpoint, version or build."""
        where, args = [], []
        for column, value in (("endpoint", endpoint), ("version", version), ("build_id", build_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return [dict(r) for r in self._db.query(f"SELECT * FROM deployments{clause} ORDER BY id DESC", tuple(args))]

    def previous_good_version(self, endpoint: str) -> str | None:
        """The newest version that served before the live one and was not rolled back for failing."""
        return previous_good_version(self.deployments(endpoint=endpoint))

    def close(self) -> None:
        self._db.close()

    # -- helpers --------------------------------------------------------------------------
    def _to_build(self, row: Any) -> Build:
        data = dict(row)
        for key in _JSON_FIELDS:
            data[key] = json.loads(data[key]) if data[key] is not None else None
        data["metrics"] = data["metrics"] or {}
        data["hyperparameters"] = data["hyperparameters"] or {}
        steps = self._db.query("SELECT name, status, started_at, ended_at, detail FROM steps"
                               " WHERE build_id = ? ORDER BY seq", (data["id"],))
        data["steps"] = [StepRecord(**dict(s)) for s in steps]
        data["triggers"] = self.triggers_of(data["id"])
        return Build(**data)


def _model(row: Any) -> dict[str, Any]:
    model = dict(row)
    for key in ("metrics", "config", "data_refs", "source_ref"):
        model[key] = json.loads(model[key]) if model.get(key) else {}
    return model
