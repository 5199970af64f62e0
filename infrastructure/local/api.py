"""The engine's HTTP API on 127.0.0.1: how the CLI, the notebook client and the skill reach it.

Routes (JSON in, JSON out; errors are ``{"error": {"type", "message"}}``):

    POST /launch                         a launch message, HMAC-signed (X-Hub-Signature-256); GitHub push
                                         events start a build for the configured branch -> 202, else 401
    POST /v1/triggers                    {"source", "reason", "details"?} -> 202 (local hooks use this)
    GET  /v1/health                      {"status": "ok", "pid"}
    GET  /v1/builds?limit=N              {"builds": [Build...]}   newest first
    POST /v1/builds                      {"reason", "source"?, "hyperparameters"?} -> 201 Build
    GET  /v1/builds/{ref}                Build with its config snapshot; ref: number, id or "latest"
    POST /v1/builds/{ref}/stop           Build                    ref may be "current"
    GET  /v1/builds/{ref}/logs?offset=K  {"text", "next_offset", "complete"}
    GET  /v1/builds/{ref}/history        {"events": [...]}        execution history
    GET  /v1/endpoints                   {"endpoints": [EndpointInfo...]}
    GET  /v1/models?limit=N              {"models": [...]}  registered versions with their served periods
    GET  /v1/live?at=EPOCH               {"deployment": {...} | null}  what served at that time
    GET  /v1/rollback/plan?version=V     {"endpoint", "pipeline", "from", "to"}  changes nothing
    POST /v1/rollback                    {"version"?} -> EndpointInfo  (default: the previous good version)
    GET  /v1/alexa/state?key=K           {"key", "value"}  the skill's per-user memory (keys "alexa.*")
    POST /v1/alexa/state                 {"key", "value"} -> {"key", "value"}  (opt-ins, what each user heard)

Status codes: 400 bad request or config, 401 no or a wrong API token, 404 not found, 409 conflict
(already running, nothing to stop), 500 anything else.

Every ``/v1`` request must carry the engine's token (``Authorization: Bearer <token>``; the
engine makes a random one at start and keeps it in ``.sagebuild/engine.json`` and the pipeline
registry, both readable by the user alone), as Jupyter does: other local users and programs
cannot start or stop builds. ``/launch`` keeps its HMAC signature instead.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from lambda_pipeline.adapters.local.httpserver import LocalHTTPServer, OneWriteHandler
from urllib.parse import parse_qs, urlparse

from lambda_pipeline.errors import (AlreadyRunning, ConfigError, NothingToRollBack, NothingToStop, NotFound, NotRetryable,
                                    SageBuildError)

from .builds import EngineBuilds
from lambda_pipeline.launch_messages import LaunchRejected, launch_secret, launch_trigger, verify_signature

__all__ = ["ApiServer"]

logger = logging.getLogger(__name__)
_MAX_BODY = 1 << 20


class _BadRequest(Exception):
    pass


def _status_of(exc: Exception) -> int:
    if isinstance(exc, (_BadRequest, ConfigError)):
        return 400
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, (AlreadyRunning, NothingToStop, NothingToRollBack, NotRetryable)):
        return 409
    return 500


class ApiServer:
    """Serves :class:`EngineBuilds` over HTTP in a background thread.

    ``hub`` receives triggers (``POST /v1/triggers`` from local hooks, ``POST /launch`` signed);
    ``load_config`` gives the launch secret and the branch that starts builds.
    """

    def __init__(self, builds: EngineBuilds, port: int = 0, hub: Any = None,
                 load_config: Any = None, token: str | None = None, state: Any = None) -> None:
        self._builds = builds
        self._token = token
        self._state = state  # the ledger's key/value state, for the skill's per-user memory
        self._hub = hub
        self._load_config = load_config
        self._server = LocalHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="engine-api", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def route(self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]) -> tuple[int, Any]:
        """Dispatch one request; returns (status, JSON-able body). Raises domain errors."""
        parts = [p for p in path.split("/") if p]
        if parts[:1] != ["v1"]:
            raise NotFound(f"no route {path}: the API lives under /v1")
        parts = parts[1:]
        b = self._builds
        if method == "GET" and parts == ["health"]:
            return 200, {"status": "ok", "pid": os.getpid()}
        if parts == ["builds"]:
            if method == "GET":
                limit = _int(query.get("limit", ["20"])[0], "limit")
                return 200, {"builds": [x.to_dict() for x in b.list(limit)]}
            if method == "POST":
                hps = body.get("hyperparameters") or {}
                build = b.start(reason=str(body.get("reason") or ""), source=str(body.get("source") or "api"),
                                hyperparameters=hps)
                return 201, build.to_dict()
        if len(parts) >= 2 and parts[0] == "builds":
            ref: str | None = None if parts[1] in ("latest", "current") else parts[1]
            if len(parts) == 2 and method == "GET":
                return 200, b.get(ref).to_dict(with_config=True)
            if parts[2:] == ["stop"] and method == "POST":
                return 200, b.stop(ref).to_dict()
            if parts[2:] == ["retry"] and method == "POST":
                return 200, b.retry(ref).to_dict()
            if parts[2:] == ["logs"] and method == "GET":
                chunk = b.logs(ref, _int(query.get("offset", ["0"])[0], "offset"))
                return 200, {"text": chunk.text, "next_offset": chunk.next_offset, "complete": chunk.complete}
            if parts[2:] == ["history"] and method == "GET":
                return 200, {"events": b.history(ref)}
        if parts == ["triggers"] and method == "POST":
            if self._hub is None:
                raise NotFound("this engine takes no triggers")
            source = str(body.get("source") or "api")
            reason = str(body.get("reason") or "").strip()
            if not reason:
                raise _BadRequest("a trigger needs a reason")
            details = body.get("details") if isinstance(body.get("details"), dict) else {}
            return 202, self._hub.submit(source, reason, details)
        if parts == ["alexa", "state"] and self._state is not None:
            return self._alexa_state(method, query, body)
        if parts == ["endpoints"] and method == "GET":
            return 200, {"endpoints": [e.to_dict() for e in b.endpoints()]}
        if len(parts) == 3 and parts[0] == "endpoints" and parts[2] == "invocations" and method == "POST":
            return 200, self._invoke(parts[1], body)
        if parts == ["models"] and method == "GET":
            return 200, {"models": b.models(_int(query.get("limit", ["50"])[0], "limit"))}
        if parts == ["live"] and method == "GET":
            at = query.get("at", [None])[0]
            if at is None:
                raise _BadRequest("give the time as ?at=<epoch seconds>")
            try:
                when = float(at)
            except ValueError:
                raise _BadRequest(f"at must be epoch seconds, got {at!r}") from None
            return 200, {"deployment": b.live_at(when)}
        if parts == ["rollback", "plan"] and method == "GET":
            return 200, b.plan_rollback(query.get("version", [None])[0])
        if parts == ["rollback"] and method == "POST":
            version = body.get("version")
            return 200, b.rollback(str(version) if version is not None else None).to_dict()
        raise NotFound(f"no route {method} {path}")

    def _invoke(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """Call an endpoint's model for a client that cannot reach it directly; the payload travels
        base64-encoded so any content type survives JSON."""
        try:
            payload = base64.b64decode(str(body.get("body") or ""), validate=True)
        except (binascii.Error, ValueError):
            raise _BadRequest("give the request body base64-encoded as 'body'") from None
        content_type = str(body.get("content_type") or "")
        if not content_type:
            raise _BadRequest("give the request's content_type")
        accept = body.get("accept")
        status, answer = self._builds.invoke(endpoint, payload, content_type,
                                             str(accept) if accept else None)
        return {"status": status, "body": base64.b64encode(answer).decode()}

    def authorized(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries this engine's token (compared in constant time)."""
        if self._token is None:
            return True
        return hmac.compare_digest((header or "").encode(), f"Bearer {self._token}".encode())

    def _alexa_state(self, method: str, query: dict[str, list[str]], body: dict[str, Any]) -> tuple[int, Any]:
        """The skill's memory (who opted in, what each user heard): only keys under ``alexa.``."""
        key = str((query.get("key") or [""])[0] if method == "GET" else body.get("key") or "")
        if not key.startswith("alexa.") or len(key) > 1000:
            raise _BadRequest(f"state keys here start with 'alexa.' (at most 1000 characters), got {key[:60]!r}")
        if method == "GET":
            return 200, {"key": key, "value": self._state.get_state(key)}
        if method == "POST":
            if not isinstance(body.get("value"), str):
                raise _BadRequest("give the value as a string")
            self._state.set_state(key, body["value"])
            return 200, {"key": key, "value": body["value"]}
        raise NotFound(f"no route {method} /v1/alexa/state")

    def launch(self, raw: bytes, headers: Any) -> tuple[int, Any]:
        """A signed launch message: verify it, then hand its trigger to the hub."""
        if self._hub is None or self._load_config is None:
            raise LaunchRejected("this engine takes no launch messages")
        config = self._load_config()
        verify_signature(launch_secret(config), raw, headers.get("X-Hub-Signature-256"))
        trigger = launch_trigger(raw, headers.get("X-GitHub-Event"), config["triggers"]["git"]["branch"])
        if trigger is None:
            return 202, {"accepted": False, "why": "this event starts no build"}
        source, reason, details = trigger
        return 202, self._hub.submit(source, reason, details)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(OneWriteHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                logger.debug("api " + fmt, *args)

            def _launch(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(min(length, _MAX_BODY)) if length else b""
                try:
                    status, payload = api.launch(raw, self.headers)
                except LaunchRejected as exc:
                    logger.warning("launch request refused: %s (from %s)", exc, self.client_address[0])
                    status, payload = 401, {"error": {"type": "Unauthorized", "message": str(exc)}}
                except (ValueError, ConfigError) as exc:
                    status, payload = 400, {"error": {"type": "BadRequest", "message": str(exc)}}
                self._reply(status, payload)

            def _reply(self, status: int, payload: Any) -> None:
                data = json.dumps(payload, default=str).encode()
                self.send_whole(status, data, [("Content-Type", "application/json")])

            def _serve(self, method: str) -> None:
                url = urlparse(self.path)
                if method == "POST" and url.path == "/launch":
                    self._launch()
                    return
                if not api.authorized(self.headers.get("Authorization")):
                    logger.warning("API request without a valid token refused: %s %s (from %s)", method,
                                   url.path, self.client_address[0])
                    self._discard_body()
                    self._reply(401, {"error": {"type": "Unauthorized", "message": (
                        "this engine's API needs its token (Authorization: Bearer ...), which is in "
                        ".sagebuild/engine.json; the CLI, the client and the skill send it for you")}})
                    return
                try:
                    body = self._body() if method == "POST" else {}
                    status, payload = api.route(method, url.path, parse_qs(url.query), body)
                except Exception as exc:  # every error is an answer, never a dropped connection
                    status = _status_of(exc)
                    if status == 500 and not isinstance(exc, SageBuildError):
                        logger.exception("API request failed")
                    payload = {"error": {"type": type(exc).__name__ if not isinstance(exc, _BadRequest)
                                         else "BadRequest", "message": str(exc)}}
                self._reply(status, payload)

            def _discard_body(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if 0 < length <= _MAX_BODY:
                    self.rfile.read(length)

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                if length > _MAX_BODY:
                    raise _BadRequest("request body too large")
                raw = self.rfile.read(length) if length else b"{}"
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError as exc:
                    raise _BadRequest(f"request body is not JSON: {exc.msg}") from exc
                if not isinstance(body, dict):
                    raise _BadRequest("request body must be a JSON object")
                return body

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        return Handler


def _int(text: str, name: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _BadRequest(f"{name} must be a whole number, got {text!r}") from None
    if value < 0:
        raise _BadRequest(f"{name} must not be negative")
    return value
