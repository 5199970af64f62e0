"""Notifier port, locally: console, webhook (signed JSON POST), SMTP e-mail and Alexa, per the config.

Events are delivered by a background worker, each sink retried with back-off; a sink that keeps
failing is logged and dropped for that event. Nothing here can fail or slow a build.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import smtplib
import threading
import time
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import Any, Callable

from ...alexa_events import DEFAULT_EVENTS as ALEXA_DEFAULT_EVENTS, DeliveryFailed, sink_from_spec
from ...audience import Audience, StateStore
from ...notifications import html_body, subject, summary, text_body

__all__ = ["ConfiguredNotifier", "ConsoleSink", "WebhookSink", "EmailSink", "sign"]

logger = logging.getLogger(__name__)


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: the X-Hub-Signature-256 scheme (GitHub-compatible)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class ConsoleSink:
    def __init__(self, write: Callable[[str], None] | None) -> None:
        self._write = write

    def send(self, event: str, payload: dict[str, Any]) -> None:
        if self._write is not None:
            self._write(f"[sagebuild] {event}: {summary(event, payload)}")


class WebhookSink:
    """POSTs ``{"event", "payload", "sent_at"}``; signs it when a secret is set."""

    def __init__(self, url: str, secret: str | None = None, timeout: float = 10.0) -> None:
        self.url, self._secret, self._timeout = url, secret, timeout

    def send(self, event: str, payload: dict[str, Any]) -> None:
        body = json.dumps({"event": event, "payload": payload, "sent_at": time.time()}, default=str).encode()
        headers = {"Content-Type": "application/json", "X-SageBuild-Event": event, "User-Agent": "SageBuild"}
        if self._secret:
            headers["X-SageBuild-Signature-256"] = sign(self._secret, body)
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self._timeout) as resp:
            if resp.status >= 300:
                raise OSError(f"webhook answered HTTP {resp.status}")


class EmailSink:
    """Plain text and HTML in one message, over SMTP."""

    def __init__(self, host: str, port: int, sender: str, to: list[str], timeout: float = 10.0) -> None:
        self.host, self.port, self.sender, self.to, self._timeout = host, port, sender, to, timeout

    def send(self, event: str, payload: dict[str, Any]) -> None:
        message = EmailMessage()
        message["Subject"] = subject(event, payload)
        message["From"] = self.sender
        message["To"] = ", ".join(self.to)
        message.set_content(text_body(event, payload))
        message.add_alternative(html_body(event, payload), subtype="html")
        with smtplib.SMTP(self.host, self.port, timeout=self._timeout) as smtp:
            smtp.send_message(message)


def alexa_sink(spec: dict[str, Any], config: dict[str, Any], state: StateStore | None = None,
               sleep: Callable[[float], None] = time.sleep, backoff: float = 0.5) -> Any:
    """The alexa sink of a config entry: credentials from the environment variables it names, Unicast
    to the allowed users who have not opted out (recorded by the skill in ``state``)."""
    client_id, secret = os.environ.get(spec["client_id_env"]), os.environ.get(spec["client_secret_env"])
    if not client_id or not secret:
        missing = [name for name, value in ((spec["client_id_env"], client_id), (spec["client_secret_env"], secret))
                   if not value]
        raise DeliveryFailed(f"the alexa sink's credentials are not set: environment variable(s) {', '.join(missing)}")
    users = list(config["skill"]["allowed_user_ids"])
    if state is not None:
        audience = Audience(state)
        users = [u for u in users if not audience.opted_out(u)]
    return sink_from_spec(spec, users, client_id, secret, sleep=sleep, backoff=backoff)


def make_sink(spec: dict[str, Any], write: Callable[[str], None] | None) -> Any:
    kind = spec["type"]
    if kind == "console":
        return ConsoleSink(write)
    if kind == "webhook":
        secret = os.environ.get(spec["secret_env"]) if spec.get("secret_env") else None
        return WebhookSink(spec["url"], secret)
    if kind == "email":
        return EmailSink(spec["smtp_host"], int(spec.get("smtp_port") or 25), spec["from"], list(spec["to"]))
    raise ValueError(f"unknown notification sink {kind!r}")


class ConfiguredNotifier:
    """Notifier port: reads the sinks from the config at each event (changes apply at once).

    Args:
        load_config: returns the validated pipeline config.
        write: where console lines go (None: nowhere).
        sleep: waits between retries (tests pass a fake).
        backoff: first retry delay in seconds; doubles each attempt.
        state: where the skill records who opted out of Alexa notifications (the ledger).
    """

    def __init__(self, load_config: Callable[[], dict[str, Any]], write: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep, backoff: float = 0.5,
                 state: StateStore | None = None) -> None:
        self._state = state
        self._load = load_config
        self._write = write
        self._sleep = sleep
        self._backoff = backoff
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.failures: list[tuple[str, str, str]] = []
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._worker.start()

    def publish(self, event: str, payload: dict[str, Any]) -> None:
        self.events.append((event, payload))
        self._queue.put((event, payload))

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every published event was delivered (or given up). True if drained in time."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._queue.unfinished_tasks

    def close(self) -> None:
        self.flush(timeout=15)
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._deliver(*item)
            except Exception:
                logger.exception("notification delivery crashed")
            finally:
                self._queue.task_done()

    def _deliver(self, event: str, payload: dict[str, Any]) -> None:
        config: dict[str, Any] = {}
        try:
            config = self._load()
            specs = config["notifications"]
        except Exception:
            logger.warning("config unreadable; notifying on the console only", exc_info=True)
            specs = [{"type": "console", "events": None, "retries": 0}]
        for spec in specs:
            events = spec.get("events") or (ALEXA_DEFAULT_EVENTS if spec["type"] == "alexa" else None)
            if events and event not in events:
                continue
            attempts = 1 + int(spec.get("retries") if spec.get("retries") is not None else 3)
            for attempt in range(attempts):
                try:
                    if spec["type"] == "alexa":  # it retries by Amazon's rules itself (429/5xx, 401/403 once)
                        alexa_sink(spec, config, self._state, self._sleep, self._backoff).send(event, payload)
                    else:
                        make_sink(spec, self._write).send(event, payload)
                    break
                except DeliveryFailed as exc:
                    logger.error("notification sink failed; giving up on this event",
                                 extra={"sink": spec["type"], "event": event, "error": str(exc)})
                    self.failures.append((spec["type"], event, str(exc)))
                    break
                except (OSError, smtplib.SMTPException, urllib.error.URLError) as exc:
                    if attempt + 1 == attempts:
                        logger.error("notification sink failed; giving up on this event",
                                     extra={"sink": spec["type"], "event": event, "error": str(exc)})
                        self.failures.append((spec["type"], event, str(exc)))
                    else:
                        self._sleep(self._backoff * (2 ** attempt))
