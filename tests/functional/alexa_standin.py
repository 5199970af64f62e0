"""A STAND-IN for Login with Amazon and the Alexa Proactive Events API, on 127.0.0.1, for tests only.

It is not Amazon: it checks what Amazon documents (../shared/CONTRACTS.md "Alexa Proactive
Events") and answers with the status codes Amazon uses, so the sink's requests and its handling of
the answers can be tested without an Alexa account. Nothing here reaches a device.

* ``POST /auth/o2/token``: form ``grant_type=client_credentials``, ``client_id``, ``client_secret``,
  ``scope=alexa::proactive_events`` -> ``{"access_token", "expires_in", "scope", "token_type"}``;
  wrong credentials 401 ``invalid_client``, wrong scope or grant 400.
* ``POST /v1/proactiveEvents/stages/development`` (and ``/v1/proactiveEvents``): ``Bearer`` token
  issued here and not expired or revoked (else 403); body checked field by field (else 400 with
  ``{"code": "INVALID_REQUEST", "message"}``); a referenceId seen before for the same audience 409;
  otherwise 202. ``script`` holds status codes to answer next (429, 500...), ``down`` answers 503.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

CLIENT_ID = "amzn1.application-oa2-client.standin"
CLIENT_SECRET = "standin-client-secret"
SKILL_LOCALES = {"en-US", "fr-FR", "ja-JP"}
USER_RE = re.compile(r"^amzn1\.ask\.account\.[A-Za-z0-9._-]+$")


def _parse_time(text: Any) -> dt.datetime:
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", text):
        raise ValueError(f"not an ISO 8601 UTC time: {text!r}")
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def validate_event(body: Any) -> str | None:
    """What Amazon would refuse in a MessageAlert event body (None: nothing)."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    for key in ("timestamp", "referenceId", "expiryTime", "event", "relevantAudience"):
        if key not in body:
            return f"{key} is required"
    if not isinstance(body["referenceId"], str) or not re.fullmatch(r"[A-Za-z0-9~]{1,100}", body["referenceId"]):
        return f"referenceId must be 1 to 100 characters of letters, digits and ~, got {body['referenceId']!r}"
    try:
        stamp, expiry = _parse_time(body["timestamp"]), _parse_time(body["expiryTime"])
    except ValueError as exc:
        return str(exc)
    if not dt.timedelta(minutes=5) <= expiry - stamp <= dt.timedelta(hours=24):
        return "expiryTime must be between 5 minutes and 24 hours after timestamp"
    event = body["event"]
    if not isinstance(event, dict) or event.get("name") != "AMAZON.MessageAlert.Activated":
        return "event.name is not a schema this skill publishes"
    payload = event.get("payload") or {}
    state, group = payload.get("state") or {}, payload.get("messageGroup") or {}
    if state.get("status") not in ("UNREAD", "FLAGGED") or state.get("freshness") not in ("NEW", "OVERDUE"):
        return "event.payload.state needs status UNREAD|FLAGGED and freshness NEW|OVERDUE"
    creator = (group.get("creator") or {}).get("name")
    if not isinstance(creator, str) or not creator:
        return "event.payload.messageGroup.creator.name is required"
    if not isinstance(group.get("count"), int) or isinstance(group.get("count"), bool) or group["count"] < 1:
        return "event.payload.messageGroup.count must be a positive integer"
    if "urgency" in group and group["urgency"] != "URGENT":
        return "event.payload.messageGroup.urgency may only be URGENT"
    attributes = body.get("localizedAttributes") or []
    needed = re.findall(r"localizedattribute:(\w+)", json.dumps(payload))
    for entry in attributes:
        if entry.get("locale") not in SKILL_LOCALES:
            return f"localizedAttributes has a locale the skill does not have: {entry.get('locale')!r}"
        missing = [name for name in needed if not entry.get(name)]
        if missing:
            return f"localizedAttributes[{entry['locale']}] lacks {missing}"
    if needed and not attributes:
        return "localizedattribute values need localizedAttributes"
    audience = body["relevantAudience"]
    if audience.get("type") == "Unicast":
        if not USER_RE.match(str((audience.get("payload") or {}).get("user") or "")):
            return "relevantAudience.payload.user is not a valid user id"
    elif audience.get("type") == "Multicast":
        if audience.get("payload") != {}:
            return "relevantAudience.payload must be empty for Multicast"
    else:
        return "relevantAudience.type must be Unicast or Multicast"
    return None


class AlexaStandIn:
    """The stand-in server. Use as a context manager; ``url`` is its base (http://127.0.0.1:PORT).

    Args:
        token_ttl: ``expires_in`` of the tokens it issues.
        clock: its notion of now (tests share a fake clock with the sink's token cache).
    """

    def __init__(self, token_ttl: int = 3600, clock: Callable[[], float] = time.time) -> None:
        self.token_ttl, self.clock = token_ttl, clock
        self.tokens: dict[str, float] = {}  # token -> expires at
        self.token_requests: list[dict[str, str]] = []
        self.events: list[dict[str, Any]] = []  # {"path", "headers", "body", "status"}
        self.script: list[int] = []  # status codes to answer next, before validating
        self.down = False
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = standin.answer(self.path, dict(self.headers.items()), raw)
                data = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_url(self) -> str:
        return self.url + "/auth/o2/token"

    @property
    def api_url(self) -> str:
        return self.url + "/v1/proactiveEvents/stages/development"

    def __enter__(self) -> "AlexaStandIn":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def revoke_tokens(self) -> None:
        """Every token issued so far is no longer valid (as when Amazon expires one early)."""
        with self._lock:
            self.tokens.clear()

    def accepted(self) -> list[dict[str, Any]]:
        return [e["body"] for e in self.events if e["status"] == 202]

    # -- the two APIs ------------------------------------------------------------------------
    def answer(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        if path == "/auth/o2/token":
            return self._token(headers, raw)
        if path in ("/v1/proactiveEvents/stages/development", "/v1/proactiveEvents"):
            status, answer = self._event(headers, raw)
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            self.events.append({"path": path, "headers": headers, "body": body, "status": status, "at": time.time()})
            return status, answer
        return 404, {"message": f"no route {path}"}

    def _token(self, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        if not headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return 400, {"error": "invalid_request", "error_description": "form encoding expected"}
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
        self.token_requests.append(form)
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"}
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return 401, {"error": "invalid_client", "error_description": "Client authentication failed"}
        if form.get("scope") != "alexa::proactive_events":
            return 400, {"error": "invalid_scope", "error_description": "An unknown scope was requested"}
        token = "Atc|" + uuid.uuid4().hex
        with self._lock:
            self.tokens[token] = self.clock() + self.token_ttl
        return 200, {"access_token": token, "expires_in": self.token_ttl, "scope": "alexa::proactive_events",
                     "token_type": "bearer"}

    def _event(self, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        if self.down:
            return 503, {"code": "SERVICE_UNAVAILABLE", "message": "stand-in: the API is down"}
        if self.script:
            status = self.script.pop(0)
            return status, {"code": "SCRIPTED", "message": f"stand-in: scripted HTTP {status}"}
        auth = headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        with self._lock:
            expires = self.tokens.get(token or "")
        if expires is None or expires <= self.clock():
            return 403, {"code": "INVALID_ACCESS_TOKEN", "message": "The authentication token is invalid or expired"}
        if not headers.get("Content-Type", "").startswith("application/json"):
            return 400, {"code": "INVALID_REQUEST", "message": "Content-Type must be application/json"}
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"code": "INVALID_REQUEST", "message": "the body is not JSON"}
        problem = validate_event(body)
        if problem:
            return 400, {"code": "INVALID_REQUEST", "message": problem}
        key = (body["referenceId"], json.dumps(body["relevantAudience"], sort_keys=True))
        with self._lock:
            if key in self._seen:
                return 409, {"code": "DUPLICATE_EVENT", "message": "an event with this referenceId exists"}
            self._seen.add(key)
        return 202, None
