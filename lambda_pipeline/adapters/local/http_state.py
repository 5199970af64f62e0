"""The skill's per-user memory over the local engine's HTTP API (``/v1/alexa/state``).

A skill served away from the engine (``skill serve``, ``say``, a Lambda with SAGEBUILD_ENGINE_URL)
keeps who opted in and what each user heard in the engine's ledger, as the AWS skill keeps it in
DynamoDB. Only keys under ``alexa.`` are reachable.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from ...errors import EngineNotRunning, SageBuildError

__all__ = ["HttpState"]


class HttpState:
    """A StateStore (get_state/set_state) on a running engine."""

    def __init__(self, url: str, timeout: float = 5.0, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})

    def get_state(self, key: str) -> str | None:
        value = self._call("GET", "/v1/alexa/state?key=" + urllib.parse.quote(key, safe=""), None)["value"]
        return value if isinstance(value, str) else None

    def set_state(self, key: str, value: str) -> None:
        self._call("POST", "/v1/alexa/state", {"key": key, "value": value})

    def _call(self, method: str, path: str, body: dict[str, str] | None) -> dict[str, object]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise SageBuildError(f"the engine at {self.url} refused {method} {path.split('?')[0]}: "
                                   f"HTTP {exc.code} {exc.read()[:200]!r}") from None
        except (urllib.error.URLError, ConnectionError) as exc:
            raise EngineNotRunning(f"cannot reach the engine at {self.url} ({exc})") from None
