"""The skill over HTTP (for local use and self-hosting): POST an Alexa envelope, get a response.

Every request is verified as Alexa requires (see ``verification.py``) unless verification is
turned off for local testing; the skill id is always checked. Bad requests get 400, never 500.
"""
from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from lambda_pipeline.adapters.local.httpserver import LocalHTTPServer, OneWriteHandler

from .app import InvalidEnvelope, SkillApp, WrongSkillId
from .verification import AlexaRequestVerifier, VerificationError

__all__ = ["SkillServer"]

logger = logging.getLogger(__name__)
_MAX_BODY = 128 * 1024


class SkillServer:
    """Serves a :class:`SkillApp` on 127.0.0.1 (``port=0`` picks a free port)."""

    def __init__(self, app: SkillApp, verifier: AlexaRequestVerifier | None, port: int = 0,
                 host: str = "127.0.0.1") -> None:
        self.app = app
        self.verifier = verifier
        self._server = LocalHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="skill-http", daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def respond(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) for one POST."""
        try:
            if self.verifier is not None:
                self.verifier.verify(headers, body)
            envelope = json.loads(body)
            return 200, self.app.handle(envelope)
        except VerificationError as exc:
            logger.warning("request failed verification: %s", exc)
            return 400, {"error": f"request verification failed: {exc}"}
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return 400, {"error": f"the body is not JSON: {exc}"}
        except (InvalidEnvelope, WrongSkillId) as exc:
            logger.warning("request rejected: %s", exc)
            return 400, {"error": str(exc)}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(OneWriteHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                logger.debug("skill http " + fmt, *args)

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_whole(status, data, [("Content-Type", "application/json;charset=UTF-8")])

            def do_POST(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0 or length > _MAX_BODY:
                    self._send(400, {"error": "missing or oversized body"})
                    return
                body = self.rfile.read(length)
                try:
                    status, payload = server.respond(self.headers, body)
                except Exception:  # never a 500: the app already turns handler failures into speech
                    logger.error("unexpected failure answering a skill request", exc_info=True)
                    status, payload = 400, {"error": "the request could not be handled"}
                self._send(status, payload)

            def do_GET(self) -> None:
                self._send(405, {"error": "POST an Alexa request envelope"})

        return Handler
