"""An ask-sdk API client that imports ``requests`` only when the skill first calls an Alexa API.

ask-sdk-core's DefaultApiClient imports ``requests`` at module load (about 125 ms), which
would double the skill's cold start; most requests never call an Alexa API.
"""
from __future__ import annotations

from typing import Any

from ask_sdk_model.services.api_client import ApiClient
from ask_sdk_model.services.api_client_request import ApiClientRequest
from ask_sdk_model.services.api_client_response import ApiClientResponse

__all__ = ["LazyApiClient"]


class LazyApiClient(ApiClient):
    """Delegates to DefaultApiClient, created on first use."""

    def __init__(self) -> None:
        self._client: Any = None

    def invoke(self, request: ApiClientRequest) -> ApiClientResponse:
        if self._client is None:
            from ask_sdk_core.api_client import DefaultApiClient
            self._client = DefaultApiClient()
        return self._client.invoke(request)
