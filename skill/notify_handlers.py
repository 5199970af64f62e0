"""Notifications in the skill: who opted in, "tell me when my build is done", and what ended since.

* Skill events (``AlexaSkillEvent.ProactiveSubscriptionChanged``, ``SkillEnabled``,
  ``SkillDisabled``) record in the ledger who opted in or out; the notifier skips those who
  opted out.
* ``NotifyMeIntent`` asks for the notification permission by voice (``Connections.SendRequest``
  ``AskFor``) when the user has not granted it; the answer (``Connections.Response``) confirms, or
  falls back to the permission card in the Alexa app.
* Opening the skill after builds ended starts with what ended since the user last heard
  (succeeded or failed, why, what is live now), then the usual welcome; asking about a build
  marks it heard (a response interceptor, so the query handlers stay as they are).

Registered ahead of ``handlers.handlers_for`` by ``app.SkillApp``.
"""
from __future__ import annotations

import logging
from typing import Any

from ask_sdk_core.dispatch_components import AbstractResponseInterceptor
from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_core.utils import is_request_type
from ask_sdk_model import Response

from lambda_pipeline.audience import Audience
from lambda_pipeline.model import Build, BuildStatus
from lambda_pipeline.ports import Builds, Pipelines

from . import answers
from .handlers import DOWN, _Base, _slot_number, gather
from .settings import SkillSettings
from .speech import Speech

__all__ = ["notify_handlers", "MarkHeardInterceptor", "NOTIFICATIONS_SCOPE", "ALERT_EVENT", "ASK_FOR_TOKEN"]

logger = logging.getLogger(__name__)

NOTIFICATIONS_SCOPE = "alexa::devices:all:notifications:write"
ALERT_EVENT = "AMAZON.MessageAlert.Activated"
ASK_FOR_TOKEN = "sagebuild-notify-me"
_SUMMARY_ITEMS = 3  # the summary names at most this many builds, then "and N more"
_LOOK_BACK = 10  # builds the summary looks at (a launch must answer well within Alexa's 8 s)
_QUERY_INTENTS = ("BuildStatusIntent", "BuildDetailsIntent", "ListBuildsIntent")


class _NotifyBase(_Base):
    def __init__(self, builds: Builds, settings: SkillSettings, audience: Audience | None,
                 pipelines: Pipelines | None = None) -> None:
        super().__init__(builds, settings, pipelines)
        self.audience = audience

    @property
    def pipeline(self) -> str:
        return self.settings.pipeline or "default"


class SkillEventHandler(_NotifyBase):
    """Opt-ins and opt-outs, as Alexa reports them (no speech: nobody is listening)."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        request: Any = handler_input.request_envelope.request
        return str(getattr(request, "object_type", "") or "").startswith("AlexaSkillEvent.")

    def handle(self, handler_input: HandlerInput) -> Response:
        request: Any = handler_input.request_envelope.request
        kind = str(request.object_type)
        user = self.user(handler_input)
        if self.audience is None or not user:
            logger.warning("skill event not recorded (no user or nowhere to record it)", extra={"event": kind})
            return handler_input.response_builder.response
        if kind == "AlexaSkillEvent.ProactiveSubscriptionChanged":
            events = [s.event_name for s in ((request.body.subscriptions if request.body else None) or [])
                      if getattr(s, "event_name", None)]
            self.audience.record_subscription(user, ALERT_EVENT in events, "ProactiveSubscriptionChanged", events)
        elif kind == "AlexaSkillEvent.SkillEnabled":
            self.audience.record_enabled(user, True)
            self.audience.mark_all_heard(self.pipeline, user)  # "since you last asked" starts now
        elif kind == "AlexaSkillEvent.SkillDisabled":
            self.audience.record_enabled(user, False)
        else:
            logger.info("skill event ignored", extra={"event": kind})
        return handler_input.response_builder.response


def _granted(handler_input: HandlerInput) -> bool | None:
    """What the request says about the notification permission: True, False, or None (not said)."""
    envelope: Any = handler_input.request_envelope
    try:
        scopes = envelope.context.system.user.permissions.scopes or {}
        status = scopes[NOTIFICATIONS_SCOPE].status
    except (AttributeError, KeyError, TypeError):
        return None
    return str(getattr(status, "value", status)) == "GRANTED"


class NotifyMeHandler(_NotifyBase):
    """ "Tell me when my build is done": ask for the permission if missing, else confirm."""

    intent = "NotifyMeIntent"

    def handle(self, handler_input: HandlerInput) -> Response:
        speech = self.speech(handler_input)
        user = self.user(handler_input)
        refused = self.refusal(handler_input)
        if refused:
            return refused
        if not self.settings.may_act(user):
            return self.answer(handler_input, speech.say("NOTIFY_NOT_LISTED", pipeline=self.pipeline.replace("-", " ")),
                               keep_open=False)
        granted = _granted(handler_input)
        if granted is None and self.audience is not None and user:
            granted = self.audience.subscribed(user)
        if granted:
            return self.answer(handler_input, confirmation(self.builds, speech), keep_open=False)
        from ask_sdk_model.interfaces.connections import SendRequestDirective
        directive = SendRequestDirective(name="AskFor", token=ASK_FOR_TOKEN, payload={
            "@type": "AskForPermissionsConsentRequest", "@version": "2",
            "permissionScopes": [{"permissionScope": NOTIFICATIONS_SCOPE, "consentLevel": "ACCOUNT"}]})
        builder = handler_input.response_builder.speak(speech.raw("NOTIFY_ASK_PERMISSION")).add_directive(directive)
        return builder.set_should_end_session(True).response


def confirmation(builds: Builds, speech: Speech) -> str:
    """"I'll tell you when build 5 ends", or the general promise when nothing runs."""
    try:
        running = next((b for b in builds.list(5) if b.status == BuildStatus.RUNNING), None)
    except Exception:  # the promise stands even if the engine is slow to answer
        logger.info("could not look up the running build", exc_info=True)
        running = None
    if running is not None:
        return speech.say("NOTIFY_CONFIRM_RUNNING", number=running.number)
    return speech.raw("NOTIFY_CONFIRM")


class PermissionAnswerHandler(_NotifyBase):
    """The answer to our AskFor: accepted -> confirm; otherwise the permission card in the Alexa app."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        request: Any = handler_input.request_envelope.request
        return is_request_type("Connections.Response")(handler_input) and getattr(request, "name", None) == "AskFor"

    def handle(self, handler_input: HandlerInput) -> Response:
        request: Any = handler_input.request_envelope.request
        speech = self.speech(handler_input)
        user = self.user(handler_input)
        code = str(getattr(getattr(request, "status", None), "code", "") or "")
        answer = str((request.payload or {}).get("status") or "") if isinstance(request.payload, dict) else ""
        if code == "200" and answer == "ACCEPTED":
            if self.audience is not None and user:
                self.audience.record_subscription(user, True, "AskFor", [ALERT_EVENT])
            return self.answer(handler_input, confirmation(self.builds, speech), keep_open=False)
        from ask_sdk_model.ui import AskForPermissionsConsentCard
        logger.info("notification permission not given by voice", extra={"code": code, "answer": answer})
        builder = handler_input.response_builder.speak(speech.raw("NOTIFY_PERMISSION_CARD"))
        builder.set_card(AskForPermissionsConsentCard(permissions=[NOTIFICATIONS_SCOPE]))
        return builder.set_should_end_session(True).response


class SummaryLaunchHandler(_NotifyBase):
    """ "Alexa, open Sage Build": what ended since the user last heard, then the usual welcome."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        return is_request_type("LaunchRequest")(handler_input)

    def handle(self, handler_input: HandlerInput) -> Response:
        speech = self.speech(handler_input)
        text = speech.raw("WELCOME")
        user = self.user(handler_input)
        names = self.names(handler_input)
        if self.audience is not None and user and len(names) > 1:
            try:
                summary = self._summary_across(handler_input, user, speech, names)
            except Exception:
                logger.warning("no 'since you last asked' summary", exc_info=True)
                summary = ""
            if summary:
                text = f"{summary} {text}"
        elif self.audience is not None and user and self.settings.may_query(user):
            try:
                summary = self._summary(user, speech)
                self.audience.mark_all_heard(self.pipeline, user)
            except Exception:  # the welcome never fails because the memory or the engine did
                logger.warning("no 'since you last asked' summary", exc_info=True)
                summary = ""
            if summary:
                text = f"{summary} {text}"
        return self.answer(handler_input, text, keep_open=True, reprompt=speech.raw("WELCOME_REPROMPT"))

    def _summary(self, user: str, speech: Speech) -> str:
        assert self.audience is not None
        heard = self.audience.heard(self.pipeline, user)
        if heard.at is None:  # first time we meet: nothing to catch up on
            return ""
        ended = [b for b in self.builds.list(_LOOK_BACK) if b.done and not heard.knows(b.number, b.ended_at)]
        if not ended:
            return ""
        return since_summary(ended, self.live_version(), speech)

    def live_version(self, builds: Builds | None = None) -> str | None:
        live = self.live(builds)
        return live.model_version if live else None

    def _summary_across(self, handler_input: HandlerInput, user: str, speech: Speech, names: list[str]) -> str:
        """What ended since the user last heard, in each pipeline they may ask about, naming it
        (the pipelines with news: at most three, then "and N more")."""
        assert self.audience is not None
        asked = [n for n in names if self.pipelines.info(n).may_query(user)]
        heard = {n: self.audience.heard(n, user) for n in asked}
        known = [n for n in asked if heard[n].at is not None]  # first time we meet: nothing to catch up on
        recent = gather(known, lambda n: (self.pipelines.builds(n).list(_LOOK_BACK),
                                          self.live_version(self.pipelines.builds(n))))
        parts = []
        for n in known:
            if recent[n] is DOWN:
                continue
            builds, live_version = recent[n]
            ended = [b for b in builds if b.done and not heard[n].knows(b.number, b.ended_at)]
            if ended:
                parts.append(self.tagged(handler_input, n, since_summary(ended, live_version, speech)))
        for n in asked:
            if n not in recent or recent[n] is not DOWN:
                self.audience.mark_all_heard(n, user)
        return answers.bounded(parts, speech, _SUMMARY_ITEMS)


def since_summary(ended: list[Build], live_version: str | None, speech: Speech) -> str:
    """What ended, newest first (at most three, then "and N more"), and what is live now."""
    items = [_item(b, speech) for b in ended[:_SUMMARY_ITEMS]]
    text = speech.raw("SINCE_INTRO") + speech.raw("LIST_SEPARATOR").join(items)
    if len(ended) > _SUMMARY_ITEMS:
        text += speech.plain("SINCE_MORE", count=len(ended) - _SUMMARY_ITEMS)
    text += speech.raw("LIST_END") + " "
    if live_version:
        text += speech.say("SINCE_LIVE", version=speech.version(live_version))
    else:
        text += speech.raw("LIVE_NOTHING")
    return text


def _item(build: Build, speech: Speech) -> str:
    n = build.number
    if build.status == BuildStatus.SUCCEEDED:
        return speech.say("SINCE_SUCCEEDED", number=n, version=speech.version(build.version))
    reason = answers.reason_sentence(build.failure_reason)
    if build.status == BuildStatus.GATE_FAILED:
        return speech.say("SINCE_GATE_FAILED", number=n, reason=reason)
    if build.status == BuildStatus.ABORTED:
        return speech.say("SINCE_ABORTED", number=n)
    if build.status == BuildStatus.INTERRUPTED:
        return speech.say("SINCE_INTERRUPTED", number=n)
    return speech.plain("SINCE_FAILED", number=n, step=speech.step(build.failed_step),
                        reason=speech.say("SOURCE_OTHER", source=reason))


class MarkHeardInterceptor(AbstractResponseInterceptor):
    """After a build question is answered, remember that the user heard how that build ended (or, for
    "list my builds", the five listed): the next launch summary leaves them out."""

    def __init__(self, builds: Builds, settings: SkillSettings, audience: Audience | None) -> None:
        self.builds, self.settings, self.audience = builds, settings, audience

    def process(self, handler_input: HandlerInput, response: Response) -> None:
        request: Any = handler_input.request_envelope.request
        if self.audience is None or getattr(request, "object_type", None) != "IntentRequest":
            return
        name = request.intent.name if request.intent else ""
        if name not in _QUERY_INTENTS:
            return
        user = _Base.user(handler_input)
        told = handler_input.attributes_manager.request_attributes.get("told")
        if told is not None and user:  # several pipelines: the handler noted what it told, per pipeline
            try:
                for pipeline, numbers in told.items():
                    self.audience.mark_heard(pipeline, user, numbers)
            except Exception:
                logger.info("could not mark builds heard", exc_info=True)
            return
        if not user or not self.settings.may_query(user):
            return
        try:
            if name == "ListBuildsIntent":
                told = self.builds.list(5)
            else:
                told = [self.builds.get(_slot_number(handler_input))]
            # only builds that had ended: one still running must still be summarised when it ends
            self.audience.mark_heard(self.settings.pipeline or "default", user, [b.number for b in told if b.done])
        except Exception:  # remembering must never spoil an answer already given
            logger.info("could not mark builds heard", exc_info=True)


def notify_handlers(builds: Builds, settings: SkillSettings, audience: Audience | None,
                    pipelines: Pipelines | None = None) -> list[Any]:
    """The request handlers of this module, to register before the others (dispatch order)."""
    return [cls(builds, settings, audience, pipelines) for cls in (SkillEventHandler, NotifyMeHandler,
                                                                   PermissionAnswerHandler, SummaryLaunchHandler)]
