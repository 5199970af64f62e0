"""Builds port over the local engine's HTTP API (see ``infrastructure/local/api.py``)."""
from __future__ import annotations

import base64
import builtins
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import errors
from ...errors import EngineNotRunning, SageBuildError
from ...model import Build, EndpointInfo, LogChunk

if TYPE_CHECKING:
    from .http_state import HttpState

__all__ = ["HttpBuilds"]


class HttpBuilds:
    """Talks to a running engine; domain errors come back as the same exception classes.

    Args:
        url: the engine's API address.
        token: the engine's API token (``.sagebuild/engine.json``); every request carries it.
    """

    def __init__(self, url: str, timeout: float = 180.0, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._token = token

    @classmethod
    def of_project(cls, project_dir: str | os.PathLike[str], timeout: float = 180.0) -> "HttpBuilds | None":
        """The engine running for a project (from its ``.sagebuild/engine.json``), or None if none
        answers there."""
        try:
            info = json.loads((Path(project_dir) / ".sagebuild" / "engine.json").read_text())
            os.kill(int(info["pid"]), 0)
            builds = cls(str(info["url"]), timeout=timeout, token=info.get("token"))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        try:
            if HttpBuilds(builds.url, timeout=3, token=builds._token).health().get("pid") != info["pid"]:
                return None
        except SageBuildError:
            return None
        return builds

    def state(self) -> HttpState:
        """The skill's per-user memory kept by this engine (``/v1/alexa/state``)."""
        from .http_state import HttpState
        return HttpState(self.url, token=self._token)

    def submit_trigger(self, source: str, reason: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
        """Hand a trigger (a git hook's commit, say) to the engine's coalescing hub."""
        return self._call("POST", "/v1/triggers", {"source": source, "reason": reason, "details": details or {}})

    def start(self, reason: str, source: str = "cli", hyperparameters: dict[str, Any] | None = None) -> Build:
        body = {"reason": reason, "source": source, "hyperparameters": hyperparameters or {}}
        return Build.from_dict(self._call("POST", "/v1/builds", body))

    def stop(self, ref: str | int | None = None) -> Build:
        return Build.from_dict(self._call("POST", f"/v1/builds/{_ref(ref, 'current')}/stop", {}))

    def retry(self, ref: str | int | None = None) -> Build:
        return Build.from_dict(self._call("POST", f"/v1/builds/{_ref(ref, 'latest')}/retry", {}))

    def get(self, ref: str | int | None = None) -> Build:
        return Build.from_dict(self._call("GET", f"/v1/builds/{_ref(ref, 'latest')}"))

    def list(self, limit: int = 20) -> builtins.list[Build]:
        return [Build.from_dict(b) for b in self._call("GET", f"/v1/builds?limit={int(limit)}")["builds"]]

    def logs(self, ref: str | int | None = None, offset: int = 0) -> LogChunk:
        data = self._call("GET", f"/v1/builds/{_ref(ref, 'latest')}/logs?offset={int(offset)}")
        return LogChunk(**data)

    def endpoints(self) -> builtins.list[EndpointInfo]:
        return [EndpointInfo(**e) for e in self._call("GET", "/v1/endpoints")["endpoints"]]

    def models(self, limit: int = 50) -> builtins.list[dict[str, Any]]:
        return self._call("GET", f"/v1/models?limit={int(limit)}")["models"]

    def live_at(self, when: float) -> dict[str, Any] | None:
        return self._call("GET", f"/v1/live?at={float(when)}")["deployment"]

    def plan_rollback(self, version: str | None = None) -> dict[str, Any]:
        query = f"?version={urllib.parse.quote(str(version))}" if version is not None else ""
        return self._call("GET", f"/v1/rollback/plan{query}")

    def rollback(self, version: str | None = None) -> EndpointInfo:
        return EndpointInfo(**self._call("POST", "/v1/rollback", {"version": version}))

    def history(self, ref: str | int | None = None) -> builtins.list[dict[str, Any]]:
        return self._call("GET", f"/v1/builds/{_ref(ref, 'latest')}/history")["events"]

    def invoke(self, endpoint: str, body: bytes, content_type: str,
               accept: str | None = None) -> tuple[int, bytes]:
        answer = self._call("POST", f"/v1/endpoints/{_ref(endpoint, '')}/invocations",
                            {"body": base64.b64encode(body).decode(), "content_type": content_type,
                             "accept": accept})
        return int(answer["status"]), base64.b64decode(answer["body"])

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/v1/health")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise _error_from(exc) from None
        except (urllib.error.URLError, ConnectionError) as exc:
            raise EngineNotRunning(f"cannot reach the engine at {self.url} ({exc}); "
                                   "start it with `sagebuild up`") from None


def _ref(ref: str | int | None, default: str) -> str:
    return urllib.parse.quote(str(ref if ref is not None else default).lstrip("#"), safe="")


def _error_from(exc: urllib.error.HTTPError) -> SageBuildError:
    try:
        info = json.loads(exc.read())["error"]
        kind, message = info["type"], info["message"]
    except (ValueError, KeyError, TypeError):
        return SageBuildError(f"the engine answered HTTP {exc.code}")
    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, SageBuildError):
        return cls(message)
    return SageBuildError(f"{kind}: {message}")
