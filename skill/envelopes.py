"""Real Alexa request envelopes, for `sagebuild say`, the tests and the benchmark."""
from __future__ import annotations

import datetime as _dt
import uuid
from typing import Any

from lambda_pipeline.config import LOCAL_SKILL_ID, LOCAL_USER_ID

__all__ = ["intent_request", "launch_request", "session_ended_request"]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _envelope(request: dict[str, Any], locale: str, skill_id: str, user_id: str, new_session: bool,
              attributes: dict[str, Any] | None, session_id: str | None, api_endpoint: str | None,
              api_token: str | None) -> dict[str, Any]:
    request.update(requestId=f"amzn1.echo-api.request.{uuid.uuid4()}", timestamp=_now(), locale=locale)
    system: dict[str, Any] = {"application": {"applicationId": skill_id}, "user": {"userId": user_id},
                              "device": {"deviceId": "amzn1.ask.device.sagebuild-local",
                                         "supportedInterfaces": {}}}
    if api_endpoint:
        system.update(apiEndpoint=api_endpoint, apiAccessToken=api_token or "local-token")
    return {"version": "1.0",
            "session": {"new": new_session, "sessionId": session_id or f"amzn1.echo-api.session.{uuid.uuid4()}",
                        "application": {"applicationId": skill_id}, "user": {"userId": user_id},
                        "attributes": attributes or {}},
            "context": {"System": system}, "request": request}


def intent_request(intent: str, slots: dict[str, Any] | None = None, locale: str = "en-US", *,
                   skill_id: str = LOCAL_SKILL_ID, user_id: str = LOCAL_USER_ID, new_session: bool = True,
                   attributes: dict[str, Any] | None = None, session_id: str | None = None,
                   api_endpoint: str | None = None, api_token: str | None = None) -> dict[str, Any]:
    """An IntentRequest. ``slots`` maps names to values, or to dicts with ``value`` and ``id``."""
    slot_objs = {}
    for name, value in (slots or {}).items():
        if isinstance(value, dict):
            slot = {"name": name, "value": value["value"], "confirmationStatus": "NONE"}
            if value.get("id"):
                slot["resolutions"] = {"resolutionsPerAuthority": [{
                    "authority": f"amzn1.er-authority.echo-sdk.{skill_id}.PIPELINE_NAME",
                    "status": {"code": "ER_SUCCESS_MATCH"},
                    "values": [{"value": {"name": value["value"], "id": value["id"]}}]}]}
            slot_objs[name] = slot
        else:
            slot_objs[name] = {"name": name, "value": str(value), "confirmationStatus": "NONE"}
    request = {"type": "IntentRequest", "dialogState": "COMPLETED",
               "intent": {"name": intent, "confirmationStatus": "NONE", "slots": slot_objs}}
    return _envelope(request, locale, skill_id, user_id, new_session, attributes, session_id, api_endpoint, api_token)


def launch_request(locale: str = "en-US", *, skill_id: str = LOCAL_SKILL_ID, user_id: str = LOCAL_USER_ID,
                   **kwargs: Any) -> dict[str, Any]:
    return _envelope({"type": "LaunchRequest"}, locale, skill_id, user_id, True, None, None,
                     kwargs.get("api_endpoint"), kwargs.get("api_token"))


def session_ended_request(locale: str = "en-US", *, skill_id: str = LOCAL_SKILL_ID,
                          user_id: str = LOCAL_USER_ID) -> dict[str, Any]:
    return _envelope({"type": "SessionEndedRequest", "reason": "USER_INITIATED"}, locale, skill_id, user_id,
                     False, None, None, None, None)
