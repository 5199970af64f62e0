"""Wires the local mode for one project: state folder, adapters, engine, builds, API.

State lives in ``<project>/.sagebuild/``: ``ledger.db`` (SQLite, WAL: builds, registry,
training jobs, endpoints), ``artifacts/``, ``jobs/`` (per-job work folders and logs),
``endpoints/`` (unpacked models, server logs), ``engine.json`` (pid and API address of the
running engine) and ``engine.lock`` (one engine per project).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lambda_pipeline.adapters.local import (ConfiguredNotifier, FileConfigStore, LocalArtifactStore,
                                            LocalHostingPlatform, LocalTrainingPlatform, SqliteLedger)
from lambda_pipeline.adapters.local.environments import LocalEnvironments
from lambda_pipeline.adapters.local.source import ProjectSourceStore
from lambda_pipeline.errors import SageBuildError
from lambda_pipeline.frameworks import FrameworkChoice, resolve_framework
from lambda_pipeline.ports import Ports
from lambda_pipeline.steps import answer_wait, bind_handlers

from .api import ApiServer
from .builds import EngineBuilds
from .engine import Engine
from .registry import PipelineRegistry, RegisteredPipeline, write_private
from .triggers import TriggerHub
from .triggers.data_watch import DataWatcher
from .triggers.git_watch import GitWatcher
from .triggers.schedule import Scheduler

__all__ = ["LocalService", "StatePaths"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StatePaths:
    """Where a project's local state lives."""

    project: Path

    @property
    def root(self) -> Path:
        return self.project / ".sagebuild"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.db"

    @property
    def engine_file(self) -> Path:
        return self.root / "engine.json"

    @property
    def lock_file(self) -> Path:
        return self.root / "engine.lock"

    @classmethod
    def of(cls, project_dir: str | os.PathLike[str]) -> "StatePaths":
        return cls(Path(project_dir).resolve())


def _framework_of(spec: dict[str, Any], ledger: SqliteLedger, config: FileConfigStore) -> FrameworkChoice:
    """The framework of the build a training job belongs to (its config snapshot; else the file's)."""
    build_id = next((t["Value"] for t in spec.get("Tags", []) if t.get("Key") == "sagebuild:build"), None)
    snapshot = None
    if build_id:
        try:
            snapshot = ledger.get_build(build_id).config
        except SageBuildError:
            snapshot = None
    training = (snapshot or config.load())["training"]
    return resolve_framework(training.get("framework"), training.get("framework_version"))


class LocalService:
    """The whole local mode of one project, in this process.

    Args:
        project_dir: folder holding ``sagebuild.json``.
        api_port: port of the HTTP API on 127.0.0.1 (0 picks a free one).
        notify: where console notifications go (a line at a time).
        grace_seconds: SIGTERM-to-SIGKILL grace for training jobs.
        registry_home: the per-user folder of the pipeline registry (default ``$SAGEBUILD_HOME``
            or ``~/.sagebuild``).
    """

    def __init__(self, project_dir: str, api_port: int = 0, notify: Callable[[str], None] | None = None,
                 grace_seconds: float = 5.0, registry_home: Path | None = None) -> None:
        self.paths = StatePaths.of(project_dir)
        self.paths.root.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.paths.lock_file, "w")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            raise SageBuildError(f"another engine is already running for {self.paths.project} "
                                 f"(see {self.paths.engine_file})") from None
        db = str(self.paths.ledger)
        artifacts = LocalArtifactStore(str(self.paths.root / "artifacts"))
        config = FileConfigStore(str(self.paths.project))
        ledger = SqliteLedger(db)
        self.notifier = ConfiguredNotifier(config.load, notify, state=ledger)  # state: who opted out of Alexa
        environments = LocalEnvironments()  # shared by all projects: $SAGEBUILD_ENV_DIR or ~/.cache/sagebuild/envs
        self.training = LocalTrainingPlatform(str(self.paths.root / "jobs"), db, artifacts, python=sys.executable,
                                              grace_seconds=grace_seconds, environments=environments,
                                              framework_of=lambda spec: _framework_of(spec, ledger, config))
        self.hosting = LocalHostingPlatform(str(self.paths.root / "endpoints"), db, artifacts, python=sys.executable,
                                            environments=environments,
                                            workers=lambda: self._config_value("deploy", "workers", None))
        self.engine = Engine({})
        self.ports = Ports(
            config=config,
            ledger=ledger,
            artifacts=artifacts,
            training=self.training,
            hosting=self.hosting,
            notifier=self.notifier,
            source=ProjectSourceStore(str(self.paths.project), artifacts),
            callbacks=self.engine,  # waiting states are answered through the engine
        )
        self.engine.bind(bind_handlers(self.ports))
        # The platforms' job changes answer the states waiting on them (EventBridge's part on AWS).
        for platform in (self.training, self.hosting):
            platform.events.listen(lambda kind, name: answer_wait(self.ports, kind, name))
        self.builds = EngineBuilds(self.engine, self.ports)
        self.hub = TriggerHub(self.builds, window=lambda: self._config_value("triggers", "coalesce_seconds", 2.0))
        self.token = secrets.token_urlsafe(32)
        self.registry = PipelineRegistry(registry_home)
        self.api = ApiServer(self.builds, port=api_port, hub=self.hub, load_config=config.load, token=self.token,
                             state=ledger)
        self.scheduler = Scheduler(schedules=lambda: self._config_value("triggers", "schedule", []),
                                   submit=self.hub.submit, state=self.ports.ledger, notify=self.notifier.publish,
                                   pipeline=lambda: self._config_value("pipeline", None, ""))
        self.watchers: list[Any] = []
        self._started = False

    def _config_value(self, section: str, key: str | None, default: Any) -> Any:
        try:
            value = self.ports.config.load()[section]
        except Exception:
            return default
        return value if key is None else value.get(key, default)

    def _start_watchers(self) -> None:
        """Triggers named in the config at start-up (a change needs a restart of `up`)."""
        try:
            triggers = self.ports.config.load()["triggers"]
        except Exception:
            logger.warning("config unreadable: no git or data watch", exc_info=True)
            return
        if triggers["git"]["repo"]:
            repo = (self.paths.project / triggers["git"]["repo"]).resolve()
            self.watchers.append(GitWatcher(str(repo), triggers["git"]["branch"], self.hub.submit, self.ports.ledger,
                                            triggers["git"]["poll_seconds"]))
        if triggers["data"]["paths"]:
            self.watchers.append(DataWatcher(self.paths.project, triggers["data"]["paths"], self.hub.submit,
                                             triggers["data"]["settle_seconds"]))
        for watcher in self.watchers:
            watcher.start()

    def start(self) -> dict[str, Any]:
        """Recover what a dead engine left, restore endpoints, serve the API. Returns engine info."""
        jobs = self.training.recover()  # first: adopted or ended jobs are known before their builds resume
        restored = self.hosting.restore()
        self.builds.prepare()
        resumed = self.builds.recover()
        self.api.start()
        self.builds.start_monitor()
        self._start_watchers()
        self.scheduler.tick()
        self.scheduler.start()
        info = {"pid": os.getpid(), "url": self.api.url, "port": self.api.port, "started_at": time.time(),
                "project": str(self.paths.project), "token": self.token}
        write_private(self.paths.engine_file, json.dumps(info, indent=2))
        self._started = True
        self._register(info)
        info.update(resumed=[(b.number, b.current_step) for b in resumed], jobs=jobs, endpoints=restored)
        return info

    def _register(self, info: dict[str, Any]) -> None:
        """Make this pipeline findable from any folder (`say`, `skill serve`, `pipelines`)."""
        name = self._config_value("pipeline", None, "") or self.paths.project.name
        try:
            self.registry.register(RegisteredPipeline(name=name, project=info["project"], url=info["url"],
                                                      pid=info["pid"], token=self.token,
                                                      started_at=info["started_at"]))
        except OSError:
            logger.warning("could not register the pipeline", exc_info=True)

    def close(self) -> None:
        """Stop builds (recorded as interrupted), endpoints and the API; release the project."""
        try:
            self.scheduler.stop()
            for watcher in self.watchers:
                watcher.stop()
            self.builds.closing()
            self.hub.close()  # waiting triggers become a queued build the next `up` starts
            self.builds.shutdown()
            self.api.stop()
            self.training.shutdown()
            self.hosting.shutdown()
            self.notifier.close()
        finally:
            self.engine.close()
            if self._started:
                self.paths.engine_file.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    self.registry.unregister(str(self.paths.project), os.getpid())
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()

    def __enter__(self) -> "LocalService":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
