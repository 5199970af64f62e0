"""The notebook client: everything the voice can do, and more, from Python.

    >>> sb = SageBuild.local("wine")          # connects to `sagebuild up`, or runs an engine here
    >>> build = sb.start(reason="deeper trees", hyperparameters={"max-depth": 8})
    >>> sb.wait(build)                         # a progress bar over the pipeline's steps
    >>> sb.deployed(), sb.invoke("13.2,1.78,...")
"""
from __future__ import annotations

import atexit
import copy
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from lambda_pipeline.adapters.local.config_store import CONFIG_FILE, FileConfigStore
from lambda_pipeline.adapters.local.http_builds import HttpBuilds
from lambda_pipeline.config import validate_config
from lambda_pipeline.errors import (AlreadyRunning, BuildNotFound, ConfigError, EngineNotRunning,
                                    InvocationError, NothingToRollBack, NothingToStop, NotFound, NotRetryable,
                                    SageBuildError)
from lambda_pipeline.model import STEPS, Build
from lambda_pipeline.ports import Builds

from .invocation import invoke_endpoint
from .results import BuildList, BuildResult, ConfigDiff, Deployment

__all__ = ["SageBuild", "ConfigAccess", "VOICE_EQUIVALENTS", "SageBuildError", "NotFound", "BuildNotFound",
           "AlreadyRunning", "ConfigError", "EngineNotRunning", "InvocationError", "NothingToStop",
           "NothingToRollBack", "NotRetryable"]

# What the skill can do, and the client method that does the same (a test keeps them in step).
VOICE_EQUIVALENTS = {"BuildStatusIntent": "status", "StartBuildIntent": "start", "StopBuildIntent": "stop",
                     "BuildDetailsIntent": "status", "LiveModelIntent": "deployed", "ListBuildsIntent": "builds",
                     "RollbackIntent": "rollback", "RetryBuildIntent": "retry",
                     # "tell me when it's done": a notebook waits for the end, with progress
                     "NotifyMeIntent": "wait"}

_embedded: dict[Path, Any] = {}
_embedded_lock = threading.Lock()


def _ref(build: Any) -> int | str | None:
    if build is None:
        return None
    if isinstance(build, (BuildResult, Build)):
        return build.id
    if isinstance(build, bool) or not isinstance(build, (int, str)):
        raise TypeError(f"a build is a number (3), an id ('b1f2…'), or a result of start()/status(); got {build!r}")
    if isinstance(build, int) and build < 1:
        raise BuildNotFound(f"build numbers start at 1, got {build}")
    return build


class ConfigAccess:
    """The pipeline's configuration: read it, change it (validated), compare it with a build's.

    ``set`` rewrites the document (``sagebuild.json`` locally, the stack's SSM parameter on AWS)
    as plain JSON (its ``//`` comments are not kept).
    """

    def __init__(self, store: Any, builds: Builds) -> None:
        self._store = store
        self._builds = builds

    def get(self) -> dict[str, Any]:
        """The validated config with every default filled in."""
        return self._store.load()

    def set(self, changes: dict[str, Any] | None = None, **keys: Any) -> dict[str, Any]:
        """Change keys by dotted path, validate the result, then save it. Returns the new config.

        >>> sb.config.set({"training.hyperparameters.max-depth": 8, "gate.minimum": 0.9})

        Raises:
            ConfigError: naming the key, before anything is written.
        """
        updates = dict(changes or {})
        updates.update({k.replace("__", "."): v for k, v in keys.items()})
        if not updates:
            raise ConfigError("nothing to set: pass {'section.key': value}")
        raw = self._raw()
        for path, value in updates.items():
            node = raw
            parts = path.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"'{path}': {part!r} is not a section")
            node[parts[-1]] = value
        validated = validate_config(copy.deepcopy(raw), "the new config")
        self._store.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n")
        return validated

    def diff(self, build: Any = None, against: dict[str, Any] | None = None) -> ConfigDiff:
        """What differs between a build's config snapshot (default: the latest) and the current config
        (or ``against``)."""
        snapshot = self._builds.get(_ref(build)).config
        if snapshot is None:
            raise NotFound("that build has no config snapshot (it never reached Initialize)")
        return ConfigDiff(_diff(snapshot, against if against is not None else self.get()))

    def _raw(self) -> dict[str, Any]:
        from lambda_pipeline.config import strip_comments
        try:
            return json.loads(strip_comments(self._store.read_text()))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{self._store.project_dir()} is not valid JSON: {exc.msg} at line {exc.lineno}") from None

    def __repr__(self) -> str:
        return json.dumps(self.get(), indent=2)


def _diff(before: Any, after: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    if isinstance(before, dict) and isinstance(after, dict):
        out: dict[str, tuple[Any, Any]] = {}
        for key in sorted(set(before) | set(after)):
            out.update(_diff(before.get(key), after.get(key), f"{prefix}{key}."))
        return out
    return {} if before == after else {prefix.rstrip("."): (before, after)}


class SageBuild:
    """The SageBuild client. Get one with :meth:`local` (or, with the AWS stack, :meth:`from_stack`)."""

    def __init__(self, builds: Builds, config: ConfigAccess | None, project: Path | None = None,
                 sleep: Callable[[float], None] = time.sleep, stack: str | None = None,
                 region: str | None = None) -> None:
        self._builds = builds
        self._config = config
        self.project = project
        self.stack, self.region = stack, region  # set by from_stack
        self._sleep = sleep

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def local(cls, project_dir: str | os.PathLike[str] = ".", engine: str = "auto") -> "SageBuild":
        """A client for a local project.

        Args:
            project_dir: the folder holding ``sagebuild.json``.
            engine: ``"auto"`` uses the running engine (``sagebuild up``) or starts one inside this
                process; ``"connect"`` only uses a running one; ``"embedded"`` always runs it here.

        Raises:
            ConfigError: no ``sagebuild.json`` there. EngineNotRunning: ``connect`` and none runs.
        """
        project = Path(project_dir).resolve()
        if not (project / CONFIG_FILE).exists():
            raise ConfigError(f"no {CONFIG_FILE} in {project}: `sagebuild init` creates one")
        if engine not in ("auto", "connect", "embedded"):
            raise ValueError(f"engine must be 'auto', 'connect' or 'embedded', got {engine!r}")
        running = HttpBuilds.of_project(project) if engine != "embedded" else None
        if running is not None:
            builds: Builds = running
        elif engine == "connect":
            raise EngineNotRunning(f"no engine runs for {project}: start one with `sagebuild up` there")
        else:
            builds = _embedded_service(project).builds
        return cls(builds, ConfigAccess(FileConfigStore(str(project)), builds), project)

    @classmethod
    def pipeline(cls, name: str) -> "SageBuild":
        """A client for the running pipeline ``name``, from any folder: the engine that ``sagebuild up``
        registered under that name (see :meth:`pipelines`).

        Raises:
            UnknownPipeline: none of that name runs for this user (the message lists those that do).
        """
        from lambda_pipeline.adapters.local.registry_pipelines import RegistryPipelines
        directory = RegistryPipelines(timeout=180.0)
        info = directory.info(name)
        builds = directory.builds(name)
        project = Path(info.folder or ".")
        return cls(builds, ConfigAccess(FileConfigStore(str(project)), builds), project)

    @staticmethod
    def pipelines() -> list[str]:
        """The names of the pipelines running for this user (each one a ``sagebuild up``)."""
        from lambda_pipeline.adapters.local.registry_pipelines import RegistryPipelines
        return RegistryPipelines().names()

    @classmethod
    def from_stack(cls, name: str, region: str | None = None, session: Any = None) -> "SageBuild":
        """A client for a deployed AWS stack (``sagebuild aws deploy``): the same adapters its
        Lambda functions use, built from the stack's outputs.

        Raises:
            NotFound: no such stack in the region. ConfigError: no region, or not a SageBuild stack.
        """
        from lambda_pipeline.adapters.aws.stack import open_stack

        builds, _ = open_stack(name, region, session)
        # The config store is the stack's SSM parameter (SsmConfigStore): read, validated, written.
        return cls(builds, ConfigAccess(builds.ports.config, builds), stack=name,
                   region=region or getattr(session, "region_name", None))

    # -- what the voice can do ------------------------------------------------------------
    def start(self, reason: str = "started from a notebook", hyperparameters: dict[str, Any] | None = None) -> BuildResult:
        """Start a build (queued if one runs). Hyperparameters override the config's for this build.

        Raises:
            ConfigError: a bad config or override (nothing starts). AlreadyRunning: refused by config.
        """
        return BuildResult.of(self._builds.start(reason, source="notebook", hyperparameters=hyperparameters))

    def stop(self, build: Any = None) -> BuildResult:
        """Stop a build (default: the running one). The live model stays as it is.

        Raises:
            NothingToStop: it already ended, or nothing runs. BuildNotFound: no such build.
        """
        return BuildResult.of(self._builds.stop(_ref(build)))

    def retry(self, build: Any = None) -> BuildResult:
        """Run a failed, interrupted or stopped build (default: the latest) again from the step where
        it stopped, keeping the results of the steps it finished. It keeps its number; its
        ``attempt`` counts up. ``wait()`` follows it.

        Raises:
            NotRetryable: it succeeded, still runs, never started, or failed its gate.
            AlreadyRunning: another build runs.
        """
        return BuildResult.of(self._builds.retry(_ref(build)))

    def status(self, build: Any = None) -> BuildResult:
        """A build (default: the latest): status, step, metrics, failure reason, steps, config."""
        return BuildResult.of(self._builds.get(_ref(build)))

    def builds(self, limit: int = 10) -> BuildList:
        """Recent builds, newest first."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        return BuildList([BuildResult.of(b) for b in self._builds.list(limit)])

    def deployed(self, endpoint: str | None = None) -> Deployment:
        """What is live now, since when, from which build."""
        endpoints = self._builds.endpoints()
        if endpoint is not None:
            endpoints = [e for e in endpoints if e.name == endpoint]
            if not endpoints:
                raise NotFound(f"no endpoint {endpoint!r}")
        if not endpoints:
            raise NotFound("nothing is deployed yet: a successful build creates the endpoint")
        live = endpoints[0]
        build = self._builds.get(live.build_id) if live.build_id else None
        return Deployment(endpoint=live.name, status=live.status, version=live.model_version, since=live.updated_at,
                          url=live.url, build_number=build.number if build else None,
                          metrics=dict(build.metrics) if build else {})

    def rollback(self, version: str | int | None = None) -> Deployment:
        """Serve an earlier version again from its stored artifact (default: the previous good one).

        Raises:
            NothingToRollBack: nothing earlier, or it is live already. NotFound: no such version.
            AlreadyRunning: a build is deploying right now.
        """
        info = self._builds.rollback(str(version) if version is not None else None)
        if info.status == "Updating":  # on AWS the swap takes minutes; a notification says when it serves
            return Deployment(endpoint=info.name, status="Updating", version=info.model_version,
                              since=info.updated_at, url=None, build_number=None, metrics={})
        return self.deployed(info.name)

    # -- and more -------------------------------------------------------------------------
    def models(self, limit: int = 50) -> list[dict[str, Any]]:
        """Registered versions, newest first: artifact, metrics, config, data, and each period served."""
        return self._builds.models(limit)

    def history(self, version: str | int) -> dict[str, Any]:
        """One version's registry record with every period it served."""
        wanted = str(version) if str(version).startswith("v") else f"v{version}"
        for model in self._builds.models(1000):
            if model["version"] == wanted:
                return model
        raise NotFound(f"no version {wanted!r} in the registry")

    def live_at(self, when: Any) -> dict[str, Any] | None:
        """What served at ``when`` (a datetime or epoch seconds); None before the first deployment."""
        timestamp = when.timestamp() if hasattr(when, "timestamp") else float(when)
        return self._builds.live_at(timestamp)

    def wait(self, build: Any = None, progress: bool = True, timeout: float | None = None,
             poll: float = 0.5) -> BuildResult:
        """Wait until a build ends; show a progress bar over the pipeline's steps. Returns the result.

        Raises:
            TimeoutError: still running after ``timeout`` seconds (the build keeps running).
        """
        ref = _ref(build)
        current = self._builds.get(ref)
        bar = _progress_bar(current.number, disabled=not progress)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                done = sum(1 for s in current.steps if s.ended_at is not None)
                bar.total = max(bar.total, len(_expected_steps(current)))
                bar.n = done
                bar.set_postfix_str((current.current_step or "starting") if not current.done else current.status, refresh=False)
                bar.refresh()
                if current.done:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"build {current.number} is still {current.status} after {timeout} s")
                self._sleep(poll)
                current = self._builds.get(current.id)
        finally:
            bar.close()
        return BuildResult.of(current)

    def logs(self, build: Any = None, follow: bool = False, out: Any = None) -> str:
        """The build's training log. With ``follow``, prints it as it grows until the job ends."""
        ref = _ref(build)
        offset, text = 0, []
        while True:
            chunk = self._builds.logs(ref, offset)
            if chunk.text:
                text.append(chunk.text)
                if follow:
                    print(chunk.text, end="", file=out or sys.stdout, flush=True)
            offset = chunk.next_offset
            if not follow or chunk.complete:
                return "".join(text)
            if not chunk.text:
                self._sleep(0.3)

    def invoke(self, payload: Any, endpoint: str | None = None, content_type: str | None = None) -> Any:
        """Call the live endpoint. A string is sent as CSV (or JSON if it looks like JSON); lists and
        dicts as JSON. Returns the decoded JSON answer (or text)."""
        live = self.deployed(endpoint)
        if live.status not in ("InService", "Updating"):
            raise InvocationError(f"endpoint {live.endpoint} is {live.status}, not InService")
        if isinstance(payload, (list, dict)):
            body, ctype = json.dumps(payload).encode(), "application/json"
        elif isinstance(payload, (str, bytes)):
            body = payload.encode() if isinstance(payload, str) else payload
            ctype = "application/json" if body.lstrip()[:1] in (b"[", b"{") else "text/csv"
        else:
            raise TypeError("payload is a CSV string, JSON text, or a list/dict")
        return _decoded(invoke_endpoint(self._builds, live.endpoint, body, content_type or ctype, "application/json"))

    def timeline(self, build: Any = None, builds: int | None = None) -> Any:
        """A matplotlib chart of step durations: one build (a Gantt bar per step), or the last
        ``builds`` builds side by side (stacked bars). Returns the Figure."""
        from .charts import steps_chart, trend_chart
        if builds is not None:
            return trend_chart(list(reversed(list(self.builds(builds)))))
        return steps_chart(self.status(build))

    @property
    def config(self) -> ConfigAccess:
        if self._config is None:
            raise SageBuildError("this client has no config access")
        return self._config

    def close(self) -> None:
        """Stop the engine this client started inside the process, if any."""
        if self.project is not None:
            _close_embedded(self.project)

    def __repr__(self) -> str:
        if self.stack is not None:
            region = f", region={self.region!r}" if self.region else ""
            return f"<SageBuild stack {self.stack}; SageBuild.from_stack({self.stack!r}{region})>"
        if self.project is not None:
            return f"<SageBuild local project {self.project}; SageBuild.local({str(self.project)!r})>"
        return f"<SageBuild over {type(self._builds).__name__}>"


def _decoded(answer: bytes) -> Any:
    try:
        return json.loads(answer)
    except json.JSONDecodeError:
        return answer.decode(errors="replace")


def _expected_steps(build: Build) -> list[str]:
    image = bool(((build.config or {}).get("image") or {}).get("build"))
    return [s for s in STEPS if image or s != "BuildImage"]


def _progress_bar(number: int, disabled: bool) -> Any:
    from tqdm.auto import tqdm
    return tqdm(total=len(STEPS) - 1, desc=f"build #{number}", unit="step", disable=disabled,
                bar_format="{desc}: {n}/{total} steps |{bar}| {elapsed} {postfix}")


def _embedded_service(project: Path) -> Any:
    from infrastructure.local.service import LocalService
    with _embedded_lock:
        if project not in _embedded:
            if _embedded:
                other = next(iter(_embedded))
                raise SageBuildError(f"this process already runs the engine for {other}; one embedded engine per "
                                     "process: run `sagebuild up` in the other project and connect to it")
            service = LocalService(str(project))
            service.start()
            _embedded[project] = service
            atexit.register(_close_embedded, project)
        return _embedded[project]


def _close_embedded(project: Path) -> None:
    with _embedded_lock:
        service = _embedded.pop(project, None)
    if service is not None:
        service.close()
