"""What every AWS adapter shares: building its client, and turning botocore errors into ours."""
from __future__ import annotations

import threading
from typing import Any

from ...errors import SageBuildError, TransientError

__all__ = ["client", "error_code", "translate"]

_TRANSIENT = {"ThrottlingException", "ResourceLimitExceeded", "ServiceUnavailable", "InternalFailure",
              "InternalServerError", "RequestLimitExceeded"}


class _LazyClient:
    """A boto3 client built on first use: a Lambda container builds all the adapters at a cold
    start but one call touches two or three services, and each client costs about 0.1 s to build."""

    def __init__(self, service: str, session: Any) -> None:
        self._service, self._session = service, session
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            with self._lock:  # one client: its error classes are what ``client.exceptions`` names
                if self._client is None:
                    import boto3
                    self._client = (self._session or boto3.session.Session()).client(self._service)
        return getattr(self._client, name)


def client(service: str, boto3_client: Any = None, boto3_session: Any = None) -> Any:
    """The given client, or one built from the session (or defaults) when first used."""
    if boto3_client is not None:
        return boto3_client
    return _LazyClient(service, boto3_session)


def error_code(exc: Exception) -> str:
    """botocore's error code (``ValidationException``...), or the exception's class name."""
    return getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__


def translate(exc: Exception, what: str) -> SageBuildError:
    """botocore's error -> the domain error the state machine understands (throttling is transient)."""
    message = getattr(exc, "response", {}).get("Error", {}).get("Message", str(exc))
    code = error_code(exc)
    if code in _TRANSIENT:
        return TransientError(f"{what}: {code}: {message}")
    return SageBuildError(f"{what}: {code}: {message}")
