"""The ``alexa`` notification sink: a build's end becomes an Alexa notification (Proactive Events API).

One module serves both sides: the local notifier (``adapters/local/notifier.py``) and the AWS
notify function (``alexa_entry.py``) build an :class:`AlexaSink` from the same config entry.

What it does, per Amazon's documentation of the Proactive Events API:

* a Login with Amazon token by client credentials, scope ``alexa::proactive_events``, cached
  until shortly before it expires (:class:`TokenCache`, shared per process: a Lambda container
  keeps it between invocations);
* one ``AMAZON.MessageAlert.Activated`` event per delivery, creator "Sage Build" (localised for
  en-US, fr-FR, ja-JP through ``localizedattribute:``), ``URGENT`` for failures, a ``referenceId``
  made of the build id and the event (letters, digits and ``~``, at most 100 characters), an
  expiry 23 hours after its timestamp (Amazon allows 5 minutes to 24 hours);
* Unicast to each allowed user who has not opted out, or one Multicast;
* 401/403 fetch a new token once; 429 and 5xx (and a refused connection) retry with back-off
  (``sleep`` is injected); 409 (the same referenceId again, e.g. a retried Lambda) counts as
  delivered; 400 is logged with Amazon's message and not retried.

Why plain ``urllib`` and not ask_sdk_model's ``ProactiveEventsServiceClient`` / ``LwaClient``: the
SDK's LWA client posts to a fixed ``/auth/o2/token`` path with an un-encoded form, has no way to
drop a cached token after a 401/403 short of touching its private cache, retries nothing, and its
default API client imports ``requests`` (the cold-start cost ``skill/api_client.py`` avoids).
The config's ``token_url`` and ``api_url`` are full URLs so a test can point them at 127.0.0.1.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["AlexaSink", "AlexaAnswer", "DeliveryFailed", "TokenCache", "TOKENS", "event_body", "reference_id",
           "api_url_for", "TOKEN_URL", "SCOPE", "EVENT_NAME", "CREATOR", "DEFAULT_EVENTS", "URGENT_EVENTS",
           "sink_from_spec"]

logger = logging.getLogger(__name__)

TOKEN_URL = "https://api.amazon.com/auth/o2/token"
SCOPE = "alexa::proactive_events"
EVENT_NAME = "AMAZON.MessageAlert.Activated"
_API_HOSTS = {"NA": "https://api.amazonalexa.com", "EU": "https://api.eu.amazonalexa.com",
              "FE": "https://api.fe.amazonalexa.com"}
# The creator Alexa names ("one new message from Sage Build"), per locale of the skill.
CREATOR = {"en-US": "Sage Build", "fr-FR": "Sage Build", "ja-JP": "セージビルド"}
# What an alexa sink sends when its config names no events: how builds ended, not that they started.
DEFAULT_EVENTS = ("build.succeeded", "build.failed", "build.gate_failed", "build.stopped", "build.interrupted",
                  "model.rolled_back", "model.rollback_failed")
URGENT_EVENTS = frozenset({"build.failed", "build.gate_failed", "build.interrupted", "model.rollback_failed"})
EXPIRY = _dt.timedelta(hours=23)  # Amazon: at least 5 minutes, at most 24 hours after the timestamp
_REFRESH_MARGIN = 120.0  # a cached token is renewed this many seconds before it expires
_REF_RE = re.compile(r"[^A-Za-z0-9~]")


class DeliveryFailed(Exception):
    """Amazon refused the notification or kept failing; already retried as the rules say, so the
    notifier must not retry it again."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class AlexaAnswer:
    """What Amazon answered to one event (``sagebuild notify-test`` prints these)."""

    audience: str
    status: int
    body: str
    attempts: int
    reference_id: str


def api_url_for(region: str | None, stage: str | None) -> str:
    """Amazon's Proactive Events URL for a region (NA, EU, FE) and stage (development, live)."""
    host = _API_HOSTS[(region or "NA").upper()]
    return host + ("/v1/proactiveEvents" if stage == "live" else "/v1/proactiveEvents/stages/development")


def reference_id(*parts: str) -> str:
    """A referenceId Amazon accepts: letters, digits and ``~``, at most 100 characters.

    >>> reference_id("b1a2", "build.failed")
    'b1a2~build~failed'
    """
    text = "~".join(_REF_RE.sub("~", p) for p in parts if p)
    if len(text) <= 100:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    return text[:79] + "~" + digest


def _iso(when: _dt.datetime) -> str:
    return when.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def event_body(event: str, payload: dict[str, Any], audience: dict[str, Any], now: float,
               ref: str | None = None) -> dict[str, Any]:
    """The Proactive Events request body for one build event and one audience."""
    stamp = _dt.datetime.fromtimestamp(now, _dt.timezone.utc)
    group: dict[str, Any] = {"creator": {"name": "localizedattribute:creatorName"}, "count": 1}
    if event in URGENT_EVENTS:
        group["urgency"] = "URGENT"
    return {
        "timestamp": _iso(stamp),
        "referenceId": ref or reference_id(str(payload.get("build_id") or payload.get("pipeline") or "sagebuild"),
                                           event),
        "expiryTime": _iso(stamp + EXPIRY),
        "event": {"name": EVENT_NAME, "payload": {"state": {"status": "UNREAD", "freshness": "NEW"},
                                                  "messageGroup": group}},
        "localizedAttributes": [{"locale": locale, "creatorName": name} for locale, name in CREATOR.items()],
        "relevantAudience": audience,
    }


class TokenCache:
    """Login with Amazon access tokens by client credentials, kept until shortly before expiry.

    Args:
        clock: seconds (``time.time``), injectable for tests.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.fetched = 0  # how many tokens were requested (tests and logs)

    def get(self, token_url: str, client_id: str, client_secret: str, timeout: float = 10.0) -> str:
        """A valid token, fetched if none is cached or it expires within two minutes.

        Raises:
            DeliveryFailed: LWA refused the credentials (400/401: the message says why).
            OSError: LWA unreachable or failing (5xx, 429): the caller may retry.
        """
        key = (token_url, client_id)
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] - _REFRESH_MARGIN > self._clock():
                return cached[0]
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": client_id,
                                       "client_secret": client_secret, "scope": SCOPE}).encode()
        request = urllib.request.Request(token_url, data=form, method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
                                                  "User-Agent": "SageBuild"})
        self.fetched += 1
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                answer = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")[:500]
            if exc.code == 429 or exc.code >= 500:
                raise OSError(f"Login with Amazon answered HTTP {exc.code}: {text}") from None
            raise DeliveryFailed(f"Login with Amazon refused the client credentials (HTTP {exc.code}): "
                                 f"{_amazon_message(text)}",
                                 exc.code) from None
        token = str(answer["access_token"])
        expires = self._clock() + float(answer.get("expires_in") or 3600)
        with self._lock:
            self._tokens[key] = (token, expires)
        return token

    def forget(self, token_url: str, client_id: str) -> None:
        """Drop the cached token (Amazon said it is no longer valid)."""
        with self._lock:
            self._tokens.pop((token_url, client_id), None)


TOKENS = TokenCache()  # one per process: a Lambda container reuses its token across invocations


@dataclass
class AlexaSink:
    """Sends build events as Alexa notifications.

    Args:
        client_id, client_secret: the skill's Alexa Skill Messaging credentials (developer console,
            Build > Permissions).
        users: Alexa user ids for Unicast (ignored with ``multicast``).
        multicast: one event to every user who allowed notifications, instead of Unicast.
        api_url, token_url: Amazon's by default (see :func:`api_url_for`).
        retries: attempts after the first on 429, 5xx or an unreachable API.
        backoff: first retry delay in seconds, doubling each time.
        sleep, clock: injectable so tests never wait.
        tokens: the token cache (the process-wide one by default).

    Example::

        sink = AlexaSink("amzn1.application-oa2-client.x", "secret", users=["amzn1.ask.account.me"])
        sink.send("build.failed", {"build_id": "b1", "build_number": 7, ...})
    """

    client_id: str
    client_secret: str
    users: list[str] = field(default_factory=list)
    multicast: bool = False
    api_url: str = ""
    token_url: str = TOKEN_URL
    retries: int = 3
    backoff: float = 0.5
    timeout: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    tokens: TokenCache = field(default_factory=lambda: TOKENS)

    def __post_init__(self) -> None:
        self.api_url = self.api_url or api_url_for("NA", "development")

    def audiences(self) -> list[dict[str, Any]]:
        if self.multicast:
            return [{"type": "Multicast", "payload": {}}]
        return [{"type": "Unicast", "payload": {"user": user}} for user in self.users]

    def send(self, event: str, payload: dict[str, Any]) -> list[AlexaAnswer]:
        """Deliver ``event`` to the audience. Raises DeliveryFailed if any recipient's delivery failed
        (after the others were tried)."""
        answers, failures = [], []
        audiences = self.audiences()
        if not audiences:
            logger.info("alexa sink has nobody to notify (no allowed user left)", extra={"event": event})
        for audience in audiences:
            body = event_body(event, payload, audience, self.clock())
            try:
                answers.append(self.post(body))
            except DeliveryFailed as exc:
                failures.append(exc)
        if failures:
            raise DeliveryFailed("; ".join(str(f) for f in failures), failures[0].status)
        return answers

    def post(self, body: dict[str, Any]) -> AlexaAnswer:
        """POST one event body, following the retry rules. Returns Amazon's answer."""
        data = json.dumps(body, ensure_ascii=False).encode()
        who = body["relevantAudience"]["type"]
        refreshed, attempt = False, 0
        while True:
            attempt += 1
            try:
                token = self.tokens.get(self.token_url, self.client_id, self.client_secret, self.timeout)
                status, text = self._post_once(data, token)
            except OSError as exc:  # unreachable, or LWA failing: like a 5xx
                status, text = 0, str(exc)
            if status in (200, 202):
                logger.info("alexa notification accepted", extra={"status": status, "reference": body["referenceId"]})
                return AlexaAnswer(who, status, text, attempt, body["referenceId"])
            if status == 409:  # this referenceId was already delivered to this audience
                logger.info("alexa notification already delivered", extra={"reference": body["referenceId"]})
                return AlexaAnswer(who, status, text, attempt, body["referenceId"])
            if status in (401, 403) and not refreshed:
                self.tokens.forget(self.token_url, self.client_id)
                refreshed = True
                continue
            if (status == 0 or status == 429 or status >= 500) and attempt <= self.retries:
                self.sleep(self.backoff * (2 ** (attempt - 1)))
                continue
            message = _amazon_message(text)
            if status == 400:
                logger.error("Alexa refused the notification (HTTP 400): %s", message,
                             extra={"reference": body["referenceId"]})
            else:
                logger.error("alexa notification not delivered: HTTP %s: %s", status or "unreachable", message)
            raise DeliveryFailed(f"Alexa answered HTTP {status or 'nothing'} after {attempt} attempt(s): {message}",
                                 status or None)

    def _post_once(self, data: bytes, token: str) -> tuple[int, str]:
        request = urllib.request.Request(self.api_url, data=data, method="POST", headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}", "User-Agent": "SageBuild"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")[:2000]
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")[:2000]


def _amazon_message(text: str) -> str:
    """Amazon's error body is ``{"code", "message"}`` (LWA: ``error_description``); else the raw text."""
    try:
        doc = json.loads(text)
    except (ValueError, TypeError):
        return text.strip()[:500] or "no message"
    if isinstance(doc, dict):
        parts = [str(doc[k]) for k in ("code", "message", "error", "error_description") if doc.get(k)]
        if parts:
            return ": ".join(parts)[:500]
    return text.strip()[:500]


def sink_from_spec(spec: dict[str, Any], users: list[str], client_id: str, client_secret: str,
                   sleep: Callable[[float], None] = time.sleep, backoff: float = 0.5,
                   tokens: TokenCache | None = None, timeout: float = 10.0) -> AlexaSink:
    """An :class:`AlexaSink` from a validated ``notifications`` entry of type ``alexa``."""
    retries = spec.get("retries")
    return AlexaSink(client_id=client_id, client_secret=client_secret, users=list(users),
                     multicast=spec.get("audience") == "multicast",
                     api_url=spec.get("api_url") or api_url_for(spec.get("region"), spec.get("stage")),
                     token_url=spec.get("token_url") or TOKEN_URL,
                     retries=3 if retries is None else int(retries), backoff=backoff, sleep=sleep,
                     tokens=tokens or TOKENS, timeout=timeout)
