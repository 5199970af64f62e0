"""Intent handlers: small classes, each answering one kind of request.

They reach builds only through the Builds port and speak only locale strings. Destructive
actions (stop) confirm first, naming the build, and are allowed only for configured users.
"""
from __future__ import annotations

import logging
import threading
from abc import abstractmethod
from typing import Any

from ask_sdk_core.dispatch_components import AbstractExceptionHandler, AbstractRequestHandler
from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_core.utils import get_user_id, is_intent_name, is_new_session, is_request_type
from ask_sdk_model import Response

from lambda_pipeline.errors import (AlreadyRunning, BuildNotFound, ConfigError, DeployFailed, EngineNotRunning,
                                    NothingToRollBack, NothingToStop, NotFound)
from lambda_pipeline.model import Build, BuildStatus, EndpointInfo
from lambda_pipeline.ports import Builds

from . import answers, screens
from .settings import SkillSettings
from .speech import Speech

__all__ = ["handlers_for", "CatchAllExceptionHandler", "HANDLED_INTENTS"]

logger = logging.getLogger(__name__)

PENDING = "pending"  # session attribute holding the action awaiting a yes or no


class _Base(AbstractRequestHandler):
    """Shared plumbing: the port, settings, locale strings, and how to answer."""

    intent: str = ""

    def __init__(self, builds: Builds, settings: SkillSettings) -> None:
        self.builds = builds
        self.settings = settings

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name(self.intent)(handler_input)

    @staticmethod
    def speech(handler_input: HandlerInput) -> Speech:
        return Speech(handler_input.request_envelope.request.locale)

    @staticmethod
    def user(handler_input: HandlerInput) -> str | None:
        try:
            return get_user_id(handler_input)
        except (AttributeError, TypeError):
            return None

    def answer(self, handler_input: HandlerInput, text: str, keep_open: bool | None = None,
               reprompt: str | None = None) -> Response:
        """Speak ``text``. One-shot requests end the session; inside a conversation it stays open."""
        speech = self.speech(handler_input)
        if keep_open is None:
            keep_open = not _is_one_shot(handler_input)
        builder = handler_input.response_builder.speak(text)
        if keep_open:
            builder.ask(reprompt or speech.raw("ANYTHING_ELSE"))
        builder.set_should_end_session(not keep_open)
        return builder.response

    def progress(self, handler_input: HandlerInput, wait_seconds: float = 1.0) -> None:
        """Say "checking your builds…" while we look.

        Best effort: it never fails the request and never holds it up for more than
        ``wait_seconds`` (the send goes on in the background).
        """
        envelope = handler_input.request_envelope
        try:
            if not envelope.context.system.api_access_token:
                return
            from ask_sdk_model.services.directive import Header, SendDirectiveRequest, SpeakDirective
            directive = SendDirectiveRequest(header=Header(request_id=envelope.request.request_id),
                                             directive=SpeakDirective(speech=self.speech(handler_input).raw("PROGRESS")))
            service = handler_input.service_client_factory.get_directive_service()
        except Exception:
            logger.info("progressive response not sent", exc_info=True)
            return

        def send() -> None:
            try:
                service.enqueue(directive)
            except Exception:
                logger.info("progressive response not sent", exc_info=True)

        sender = threading.Thread(target=send, name="progressive-response", daemon=True)
        sender.start()
        sender.join(timeout=wait_seconds)

    def find_build(self, handler_input: HandlerInput) -> Build | None:
        """The build the user named (BuildNumber slot), else the latest; None if there are none."""
        number = _slot_number(handler_input)
        try:
            return self.builds.get(number)
        except BuildNotFound:
            if number is None:
                return None
            raise

    def live(self) -> EndpointInfo | None:
        """The endpoint serving a model. One ``OutOfService`` serves nothing (on SageMaker, and
        locally while no engine runs: the ledger still names its version)."""
        for endpoint in self.builds.endpoints():
            if endpoint.model_version and endpoint.status != "OutOfService":
                return endpoint
        return None

    def refusal(self, handler_input: HandlerInput) -> Response | None:
        """A polite refusal if this user may not query; None if they may."""
        if self.settings.may_query(self.user(handler_input)):
            return None
        return self.answer(handler_input, self.speech(handler_input).raw("NOT_ALLOWED_QUERY"), keep_open=False)

    def action_refusal(self, handler_input: HandlerInput) -> Response | None:
        """Starting, stopping and rolling back: only allowed users, and only for our pipeline."""
        if not self.settings.may_act(self.user(handler_input)):
            return self.answer(handler_input, self.speech(handler_input).raw("NOT_ALLOWED"))
        return self.unknown_pipeline(handler_input)

    def unknown_pipeline(self, handler_input: HandlerInput) -> Response | None:
        """If the Pipeline slot names another pipeline, say which one we know."""
        said = _slot(handler_input, "Pipeline")
        if not said or not self.settings.pipeline:
            return None
        canonical = _resolved_id(handler_input, "Pipeline")
        if canonical == self.settings.pipeline or _norm(said) == _norm(self.settings.pipeline):
            return None
        speech = self.speech(handler_input)
        return self.answer(handler_input, speech.say("UNKNOWN_PIPELINE", pipeline=self.settings.pipeline.replace("-", " ")))

    def not_found(self, handler_input: HandlerInput) -> Response:
        speech = self.speech(handler_input)
        latest = self.builds.get(None)
        return self.answer(handler_input, speech.say("BUILD_NOT_FOUND", number=_slot_number(handler_input),
                                                     latest=latest.number))


class _Prompt(_Base):
    """Says something and waits for the next question (the session stays open)."""

    text_key = reprompt_key = ""

    def handle(self, handler_input: HandlerInput) -> Response:
        speech = self.speech(handler_input)
        return self.answer(handler_input, speech.raw(self.text_key), keep_open=True,
                           reprompt=speech.raw(self.reprompt_key))


class LaunchHandler(_Prompt):
    text_key, reprompt_key = "WELCOME", "WELCOME_REPROMPT"

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_request_type("LaunchRequest")(handler_input)


class HelpHandler(_Prompt):
    intent, text_key, reprompt_key = "AMAZON.HelpIntent", "HELP", "HELP_REPROMPT"


class NavigateHomeHandler(LaunchHandler):
    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name("AMAZON.NavigateHomeIntent")(handler_input)


class StopCancelHandler(_Base):
    """Stop and Cancel end the conversation. They never stop a build."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_intent_name("AMAZON.StopIntent")(handler_input) or is_intent_name("AMAZON.CancelIntent")(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        handler_input.attributes_manager.session_attributes.pop(PENDING, None)
        return self.answer(handler_input, self.speech(handler_input).raw("GOODBYE"), keep_open=False)


class FallbackHandler(_Prompt):
    intent, text_key, reprompt_key = "AMAZON.FallbackIntent", "FALLBACK", "FALLBACK_REPROMPT"


class SessionEndedHandler(_Base):
    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_request_type("SessionEndedRequest")(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        return handler_input.response_builder.response


class _QueryHandler(_Base):
    """Questions about builds: anyone allowed to ask may; a progressive response covers the lookup."""

    def handle(self, handler_input: HandlerInput) -> Response:
        refused = self.refusal(handler_input) or self.unknown_pipeline(handler_input)
        if refused:
            return refused
        self.progress(handler_input)
        try:
            text = self.reply(handler_input, self.speech(handler_input))
        except BuildNotFound:
            return self.not_found(handler_input)
        return self.answer(handler_input, text)

    @abstractmethod
    def reply(self, handler_input: HandlerInput, speech: Speech) -> str:
        """The spoken answer to this question."""


class BuildStatusHandler(_QueryHandler):
    intent = "BuildStatusIntent"

    def reply(self, handler_input: HandlerInput, speech: Speech) -> str:
        build, live = self.find_build(handler_input), self.live()
        screens.offer(handler_input, build, live, speech)
        return answers.status_answer(build, live, speech)


class BuildDetailsHandler(_QueryHandler):
    intent = "BuildDetailsIntent"

    def reply(self, handler_input: HandlerInput, speech: Speech) -> str:
        build, live = self.find_build(handler_input), self.live()
        screens.offer(handler_input, build, live, speech)
        return answers.details_answer(build, live, speech)


class LiveModelHandler(_QueryHandler):
    intent = "LiveModelIntent"

    def reply(self, handler_input: HandlerInput, speech: Speech) -> str:
        live = self.live()
        build = self.builds.get(live.build_id) if live and live.build_id else None
        pipeline = (build.pipeline if build else None) or self.settings.pipeline or (live.name if live else "")
        screens.offer(handler_input, build, live, speech)
        return answers.live_answer(live, build, pipeline, speech)


class ListBuildsHandler(_QueryHandler):
    intent = "ListBuildsIntent"

    def reply(self, handler_input: HandlerInput, speech: Speech) -> str:
        return answers.list_answer(self.builds.list(5), speech)


class StartBuildHandler(_Base):
    intent = "StartBuildIntent"

    def handle(self, handler_input: HandlerInput) -> Response:
        speech = self.speech(handler_input)
        refused = self.action_refusal(handler_input)
        if refused:
            return refused
        running = [b for b in self.builds.list(5) if b.status == BuildStatus.RUNNING]
        try:
            build = self.builds.start("started by voice", source="voice")
        except AlreadyRunning:
            return self.answer(handler_input, speech.say("START_REFUSED", running=running[0].number if running else "?"))
        except ConfigError as exc:
            return self.answer(handler_input, speech.say("START_CONFIG_ERROR", reason=str(exc)))
        if build.status == BuildStatus.QUEUED:
            return self.answer(handler_input, speech.say("START_QUEUED", number=build.number,
                                                         running=running[0].number if running else "?"))
        return self.answer(handler_input, speech.say("START_STARTED", number=build.number))


class StopBuildHandler(_Base):
    """Asks first, naming the build; YesIntent then stops it."""

    intent = "StopBuildIntent"

    def handle(self, handler_input: HandlerInput) -> Response:
        speech = self.speech(handler_input)
        refused = self.action_refusal(handler_input)
        if refused:
            return refused
        try:
            build = self.find_build(handler_input) if _slot_number(handler_input) is not None else self._active()
        except BuildNotFound:
            return self.not_found(handler_input)
        if build is None:
            return self.answer(handler_input, speech.raw("STOP_NOTHING"))
        if build.done:
            return self.answer(handler_input, speech.say("STOP_ALREADY_ENDED", number=build.number))
        handler_input.attributes_manager.session_attributes[PENDING] = {"action": "stop", "build": build.number}
        step = speech.step(build.current_step) if build.status == BuildStatus.RUNNING else speech.raw("WORD_QUEUED")
        return self.answer(handler_input, speech.plain("STOP_CONFIRM", number=build.number, step=step), keep_open=True,
                           reprompt=speech.say("STOP_CONFIRM_REPROMPT", number=build.number))

    def _active(self) -> Build | None:
        for build in self.builds.list(20):
            if build.status == BuildStatus.RUNNING:
                return build
        for build in self.builds.list(20):
            if build.status == BuildStatus.QUEUED:
                return build
        return None


class RollbackHandler(_Base):
    """Asks first, naming the version it goes back to; YesIntent then rolls back."""

    intent = "RollbackIntent"

    def handle(self, handler_input: HandlerInput) -> Response:
        speech = self.speech(handler_input)
        refused = self.action_refusal(handler_input)
        if refused:
            return refused
        wanted = _slot_number(handler_input, "Version")
        try:
            plan = self.builds.plan_rollback(f"v{wanted}" if wanted is not None else None)
        except NothingToRollBack as exc:
            return self.answer(handler_input, speech.say("ROLLBACK_NOTHING", reason=str(exc)))
        except NotFound:
            return self.answer(handler_input, speech.say("ROLLBACK_NOT_FOUND", version=wanted))
        handler_input.attributes_manager.session_attributes[PENDING] = {"action": "rollback", "version": plan["to"],
                                                                         "from": plan["from"]}
        text = speech.say("ROLLBACK_CONFIRM", pipeline=plan["pipeline"].replace("-", " "),
                          current=speech.version(plan["from"]), target=speech.version(plan["to"]))
        return self.answer(handler_input, text, keep_open=True,
                           reprompt=speech.say("ROLLBACK_CONFIRM_REPROMPT", target=speech.version(plan["to"])))


class YesHandler(_Base):
    intent = "AMAZON.YesIntent"

    def handle(self, handler_input: HandlerInput) -> Response:
        speech = self.speech(handler_input)
        pending = handler_input.attributes_manager.session_attributes.pop(PENDING, None)
        if not pending:
            return self.answer(handler_input, speech.raw("NOTHING_TO_CONFIRM"), keep_open=True)
        if not self.settings.may_act(self.user(handler_input)):
            return self.answer(handler_input, speech.raw("NOT_ALLOWED"), keep_open=False)
        if pending.get("action") == "rollback":
            return self._roll_back(handler_input, speech, pending)
        number = pending["build"]
        try:
            self.builds.stop(number)
        except NothingToStop:
            return self.answer(handler_input, speech.say("STOP_ALREADY_ENDED", number=number), keep_open=False)
        return self.answer(handler_input, speech.say("STOP_DONE", number=number), keep_open=False)

    def _roll_back(self, handler_input: HandlerInput, speech: Speech, pending: dict[str, Any]) -> Response:
        try:
            info = self.builds.rollback(pending["version"])
        except AlreadyRunning:
            return self.answer(handler_input, speech.raw("ROLLBACK_BUSY"), keep_open=False)
        except (NothingToRollBack, NotFound, DeployFailed) as exc:
            return self.answer(handler_input, speech.say("ROLLBACK_FAILED", reason=str(exc)), keep_open=False)
        key = "ROLLBACK_STARTED" if info.status == "Updating" else "ROLLBACK_DONE"
        return self.answer(handler_input, speech.say(key, version=speech.version(info.model_version)),
                           keep_open=False)


class NoHandler(_Base):
    intent = "AMAZON.NoIntent"

    def handle(self, handler_input: HandlerInput) -> Response:
        speech = self.speech(handler_input)
        pending = handler_input.attributes_manager.session_attributes.pop(PENDING, None)
        if not pending:
            return self.answer(handler_input, speech.raw("NOTHING_TO_CONFIRM"), keep_open=True)
        if pending.get("action") == "rollback":
            return self.answer(handler_input, speech.say("ROLLBACK_KEEP", version=speech.version(pending["from"])),
                               keep_open=False)
        return self.answer(handler_input, speech.say("STOP_KEEP", number=pending["build"]), keep_open=False)


class CatchAllExceptionHandler(AbstractExceptionHandler):
    """Any exception becomes a spoken apology and a logged error, never a crash."""

    def can_handle(self, handler_input: HandlerInput, exception: Exception) -> bool:
        return True

    def handle(self, handler_input: HandlerInput, exception: Exception) -> Response:
        logger.error("skill handler failed", exc_info=exception)
        try:
            speech = Speech(handler_input.request_envelope.request.locale)
        except Exception:
            speech = Speech("en-US")
        key = "ENGINE_DOWN" if isinstance(exception, EngineNotRunning) else "ERROR"
        return handler_input.response_builder.speak(speech.raw(key)).set_should_end_session(True).response


def handlers_for(builds: Builds, settings: SkillSettings) -> list[AbstractRequestHandler]:
    """Every request handler, in dispatch order."""
    classes = [LaunchHandler, BuildStatusHandler, StartBuildHandler, StopBuildHandler, BuildDetailsHandler,
               LiveModelHandler, ListBuildsHandler, RollbackHandler, YesHandler, NoHandler, HelpHandler, StopCancelHandler,
               NavigateHomeHandler, FallbackHandler, SessionEndedHandler]
    return [cls(builds, settings) for cls in classes]


# The intents the code handles; the lint test checks each locale's model has exactly these.
HANDLED_INTENTS = frozenset({"BuildStatusIntent", "StartBuildIntent", "StopBuildIntent", "BuildDetailsIntent",
                             "LiveModelIntent", "ListBuildsIntent", "RollbackIntent", "AMAZON.HelpIntent", "AMAZON.CancelIntent",
                             "AMAZON.StopIntent", "AMAZON.NavigateHomeIntent", "AMAZON.FallbackIntent",
                             "AMAZON.YesIntent", "AMAZON.NoIntent",
                             "NotifyMeIntent"})  # handled in notify_handlers.py


# -- slot helpers ---------------------------------------------------------------------------
def _is_one_shot(handler_input: HandlerInput) -> bool:
    try:
        return is_new_session(handler_input)
    except TypeError:  # no session at all: treat as one-shot
        return True


def _slot(handler_input: HandlerInput, name: str) -> str | None:
    try:
        slot = (handler_input.request_envelope.request.intent.slots or {}).get(name)
    except AttributeError:
        return None
    return slot.value if slot is not None else None


def _slot_number(handler_input: HandlerInput, name: str = "BuildNumber") -> int | None:
    value = _slot(handler_input, name)
    if value is None or value == "?":
        return None
    try:
        number = int(float(value))
    except ValueError:
        return None
    return number if number > 0 else None


def _resolved_id(handler_input: HandlerInput, name: str) -> str | None:
    try:
        slot = handler_input.request_envelope.request.intent.slots[name]
        for authority in slot.resolutions.resolutions_per_authority:
            if authority.status.code.value == "ER_SUCCESS_MATCH":
                return authority.values[0].value.id
    except (AttributeError, KeyError, TypeError, IndexError):
        return None
    return None


def _norm(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())
