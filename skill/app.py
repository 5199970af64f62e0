"""The skill as one callable: validate the envelope, check the skill id, dispatch, serialize.

Used by the Lambda entry (``skill.lambda_handler``), the HTTP web app and ``sagebuild say``.
A malformed envelope or a wrong skill id is rejected before any handler runs; anything that
goes wrong inside a handler becomes a spoken apology.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any

from ask_sdk_core.serialize import DefaultSerializer
from ask_sdk_core.skill_builder import CustomSkillBuilder
from ask_sdk_model import RequestEnvelope

from lambda_pipeline.audience import Audience, StateStore
from lambda_pipeline.ports import Builds, Pipelines

from .api_client import LazyApiClient
from .dynamic_entities import DynamicEntitiesInterceptor
from .handlers import CatchAllExceptionHandler, handlers_for, single_pipeline
from .notify_handlers import MarkHeardInterceptor, notify_handlers
from .settings import SkillSettings
from .speech import Speech

__all__ = ["SkillApp", "InvalidEnvelope", "WrongSkillId", "lambda_handler", "REJECTED"]

logger = logging.getLogger(__name__)

REJECTED: dict[str, Any] = {"version": "1.0", "response": {"shouldEndSession": True}}
_REQUEST_TYPES_WITH_SESSION = ("LaunchRequest", "IntentRequest", "SessionEndedRequest")


class InvalidEnvelope(ValueError):
    """The request is not an Alexa request envelope of a shape we accept."""


class WrongSkillId(PermissionError):
    """The request names another skill (or none)."""


class SkillApp:
    """The skill bound to the pipelines it answers for (or one Builds port) and its settings."""

    def __init__(self, builds: Builds | Pipelines, settings: SkillSettings, memory: StateStore | None = None) -> None:
        """``builds``: one pipeline's Builds port, or a ``Pipelines`` directory (the local registry,
        the region's stacks). ``memory`` (the ledger's state, or the engine's /v1/alexa/state) keeps
        who opted in to notifications and what each user last heard; without it there is no "since
        you last asked". Notifications follow the home pipeline (``settings.pipeline``, else the first)."""
        self.settings = settings
        pipelines: Pipelines
        if _is_directory(builds):
            pipelines = builds  # type: ignore[assignment]
            home: Builds = HomeBuilds(pipelines, settings.pipeline)
        else:
            home = builds  # type: ignore[assignment]
            pipelines = single_pipeline(home, settings)
        self.pipelines = pipelines
        builder = CustomSkillBuilder(api_client=LazyApiClient())
        audience = Audience(memory) if memory is not None else None
        for handler in notify_handlers(home, settings, audience, pipelines) + handlers_for(home, settings, pipelines):
            builder.add_request_handler(handler)
        builder.add_global_response_interceptor(MarkHeardInterceptor(home, settings, audience))
        builder.add_global_response_interceptor(DynamicEntitiesInterceptor(pipelines))
        builder.add_exception_handler(CatchAllExceptionHandler())
        self._skill = builder.create()
        self._serializer = DefaultSerializer()

    def handle(self, envelope: Any) -> dict[str, Any]:
        """Answer one envelope. Raises InvalidEnvelope or WrongSkillId before dispatching."""
        check_shape(envelope)
        self.check_skill_id(envelope)
        try:
            request = self._serializer.deserialize(json.dumps(envelope), RequestEnvelope)
        except Exception as exc:
            raise InvalidEnvelope(f"cannot read the envelope: {exc}") from exc
        try:
            response = self._skill.invoke(request_envelope=request, context=None)
        except Exception:
            logger.error("the skill failed outside its handlers", exc_info=True)
            return apology(envelope)
        return self._serializer.serialize(response)

    def handle_or_reject(self, envelope: Any) -> dict[str, Any]:
        """Like :meth:`handle` but never raises: what Lambda returns."""
        try:
            return self.handle(envelope)
        except (InvalidEnvelope, WrongSkillId) as exc:
            logger.warning("request rejected: %s", exc)
            return dict(REJECTED)
        except Exception:
            logger.error("unexpected failure", exc_info=True)
            return apology(envelope)

    def check_skill_id(self, envelope: dict[str, Any]) -> None:
        """The context's and the session's application id must both be ours."""
        if not self.settings.skill_id:
            raise WrongSkillId("no skill id is configured, so every request is rejected")
        ids = [envelope["context"]["System"]["application"].get("applicationId")]
        session = envelope.get("session")
        if isinstance(session, dict):
            ids.append((session.get("application") or {}).get("applicationId"))
        for found in ids:
            if found != self.settings.skill_id:
                raise WrongSkillId(f"application id {str(found)[:80]!r} is not this skill's")


def _is_directory(target: Any) -> bool:
    return all(callable(getattr(target, attr, None)) for attr in ("names", "info", "builds"))


class HomeBuilds:
    """The Builds port of the home pipeline in a directory, looked up on each call (it may start later)."""

    def __init__(self, pipelines: Pipelines, name: str) -> None:
        self._pipelines, self._name = pipelines, name

    def _target(self) -> Builds:
        names = self._pipelines.names()
        if not names:
            from lambda_pipeline.errors import EngineNotRunning
            raise EngineNotRunning("no pipeline is running")
        return self._pipelines.builds(self._name if self._name in names else names[0])

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._target(), attr)


def check_shape(envelope: Any) -> None:
    """Reject what is not an Alexa request envelope, naming what is wrong."""
    if not isinstance(envelope, dict):
        raise InvalidEnvelope("the envelope must be a JSON object")
    request = envelope.get("request")
    if not isinstance(request, dict):
        raise InvalidEnvelope("'request' must be an object")
    for key in ("type", "requestId", "timestamp"):
        if not isinstance(request.get(key), str):
            raise InvalidEnvelope(f"'request.{key}' must be a string")
    if "locale" in request and not isinstance(request["locale"], str):
        raise InvalidEnvelope("'request.locale' must be a string")
    if request["type"] == "IntentRequest":
        intent = request.get("intent")
        if not isinstance(intent, dict) or not isinstance(intent.get("name"), str):
            raise InvalidEnvelope("'request.intent.name' must be a string")
        slots = intent.get("slots", {})
        if slots is not None and (not isinstance(slots, dict) or not all(isinstance(s, dict) for s in slots.values())):
            raise InvalidEnvelope("'request.intent.slots' must map names to objects")
    system = (envelope.get("context") or {}).get("System") if isinstance(envelope.get("context"), dict) else None
    if not isinstance(system, dict) or not isinstance(system.get("application"), dict):
        raise InvalidEnvelope("'context.System.application' is missing")
    for part in ("user", "device"):
        if part in system and not isinstance(system[part], dict):
            raise InvalidEnvelope(f"'context.System.{part}' must be an object")
    session = envelope.get("session")
    if session is not None:
        if not isinstance(session, dict):
            raise InvalidEnvelope("'session' must be an object")
        if "attributes" in session and session["attributes"] is not None and not isinstance(session["attributes"], dict):
            raise InvalidEnvelope("'session.attributes' must be an object")
        for part in ("application", "user"):
            if part in session and not isinstance(session[part], dict):
                raise InvalidEnvelope(f"'session.{part}' must be an object")
        if "new" in session and not isinstance(session["new"], bool):
            raise InvalidEnvelope("'session.new' must be true or false")


def apology(envelope: Any) -> dict[str, Any]:
    """A spoken apology in the request's language."""
    locale = None
    if isinstance(envelope, dict) and isinstance(envelope.get("request"), dict):
        locale = envelope["request"].get("locale") if isinstance(envelope["request"].get("locale"), str) else None
    text = Speech(locale).raw("ERROR")
    return {"version": "1.0", "response": {"outputSpeech": {"type": "SSML", "ssml": f"<speak>{text}</speak>"},
                                           "shouldEndSession": True}}


_default: SkillApp | None = None


def _default_app() -> SkillApp:
    """Built once per Lambda container from the environment: the region's SageBuild stacks
    (SAGEBUILD_PIPELINES_PATH) with this stack's ledger as memory, or this stack alone
    (SAGEBUILD_STATE_MACHINE), or a local engine's API (SAGEBUILD_ENGINE_URL)."""
    global _default
    if _default is None:
        builds: Builds | Pipelines
        memory: StateStore
        if os.environ.get("SAGEBUILD_STATE_MACHINE"):
            from lambda_pipeline.lambda_entry import builds_from_environment
            own = builds_from_environment()
            memory = own.ports.ledger  # the stack's DynamoDB ledger
            builds = own
            if os.environ.get("SAGEBUILD_PIPELINES_PATH"):  # every SageBuild stack of the region
                from lambda_pipeline.adapters.aws.ssm_pipelines import SsmPipelines
                builds = SsmPipelines(os.environ["SAGEBUILD_PIPELINES_PATH"])
        elif os.environ.get("SAGEBUILD_ENGINE_URL"):
            from lambda_pipeline.adapters.local.http_builds import HttpBuilds
            engine = HttpBuilds(os.environ["SAGEBUILD_ENGINE_URL"], timeout=5,
                                token=os.environ.get("SAGEBUILD_ENGINE_TOKEN"))
            builds, memory = engine, engine.state()
        else:
            raise RuntimeError("neither SAGEBUILD_STATE_MACHINE nor SAGEBUILD_ENGINE_URL is set: "
                               "the skill does not know where builds are")
        _default = SkillApp(builds, SkillSettings.from_env(), memory)
    return _default


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """AWS Lambda entry point of the skill. Never raises: bad requests get a rejection, errors an apology."""
    try:
        app = _default_app()
    except Exception:
        logger.error("skill is not configured", exc_info=True)
        return apology(event)
    return app.handle_or_reject(event)
