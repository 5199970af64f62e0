"""Calling a live endpoint, for every front end (CLI, demo, notebook client), through the Builds
port: the engine's hosting locally, the engine's API from another process, SageMaker's
InvokeEndpoint on AWS."""
from __future__ import annotations

from lambda_pipeline.errors import InvocationError
from lambda_pipeline.ports import Builds

__all__ = ["invoke_endpoint"]


def invoke_endpoint(builds: Builds, endpoint: str, body: bytes, content_type: str,
                    accept: str | None = None) -> bytes:
    """The model's answer. Raises InvocationError when the endpoint answers an error or nothing,
    NotFound for an unknown endpoint."""
    status, answer = builds.invoke(endpoint, body, content_type, accept)
    text = answer.decode(errors="replace")[:300]
    if status == 0:
        raise InvocationError(f"endpoint {endpoint}: {text}")  # e.g. "the endpoint did not answer: ..."
    if status >= 300:
        raise InvocationError(f"the endpoint answered HTTP {status}: {text}")
    return answer
