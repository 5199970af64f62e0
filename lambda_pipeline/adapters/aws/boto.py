"""What every AWS adapter shares: building its client, and turning botocore errors into ours."""
from __future__ import annotations

from typing import Any

from ...errors import SageBuildError, TransientError

__all__ = ["client", "error_code", "translate"]

_TRANSIENT = {"ThrottlingException", "ResourceLimitExceeded", "ServiceUnavailable", "InternalFailure",
              "InternalServerError", "RequestLimitExceeded"}


def client(service: str, boto3_client: Any = None, boto3_session: Any = None) -> Any:
    """The given client, or one built here (never at import time) from the session or defaults."""
    if boto3_client is not None:
        return boto3_client
    import boto3
    return (boto3_session or boto3.session.Session()).client(service)


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
