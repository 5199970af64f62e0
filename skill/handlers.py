"""Intent handlers: small classes, each answering one kind of request.

They reach builds only through the Builds port and speak only locale strings. Destructive
actions (stop) confirm first, naming the build, and are allowed only for configured users.
"""
from __future__ import annotations

import functools
import logging
import threading
from abc import abstractmethod
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Callable

from ask_sdk_core.dispatch_components import AbstractExceptionHandler, AbstractRequestHandler
from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_core.utils import get_user_id, is_intent_name, is_new_session, is_request_type
from ask_sdk_model import Response

from lambda_pipeline.errors import (AlreadyRunning, BuildNotFound, ConfigError, DeployFailed, EngineNotRunning,
                                    NothingToRollBack, NothingToStop, NotFound, NotRetryable)
from lambda_pipeline.model import Build, BuildStatus, EndpointInfo, PipelineInfo
from lambda_pipeline.pipelines import FixedPipelines
from lambda_pipeline.ports import Builds, Pipelines

from . import answers, screens
from .pipeline_names import match, spoken_names
from .settings import SkillSettings
from .speech import Speech

__all__ = ["handlers_for", "CatchAllExceptionHandler", "HANDLED_INTENTS", "single_pipeline", "pipeline_label"]

logger = logging.getLogger(__name__)

PENDING = "pending"  # session attribute holding the action awaiting a yes or no
ASKING = "asking"  # session attribute: the action waiting for "which pipeline?"
CHOSEN = "pipeline"  # session attribute: the pipeline the user chose for actions in this conversation
ACROSS_ITEMS = 3  # answers across pipelines name at most this many, then "and N more"
ACROSS_SECONDS = 4.0  # pipelines asked together; one that has not answered by then is "not answering"
DOWN = object()  # what gather() gives for a pipeline that failed or did not answer in time
_pool: ThreadPoolExecutor | None = None


def gather(names: list[str], fetch: Callable[[str], Any], timeout: float = ACROSS_SECONDS) -> dict[str, Any]:
    """``fetch(name)`` for every pipeline at once (one slow or dead engine must not hold the answer
    past Alexa's 8 s); DOWN for those that raised or did not answer within ``timeout``."""
    global _pool
    if len(names) < 2:
        out: dict[str, Any] = {}
        for name in names:
            try:
                out[name] = fetch(name)
            except Exception:
                logger.warning("pipeline %s did not answer", name, exc_info=True)
                out[name] = DOWN
        return out
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="pipelines")
    futures = {_pool.submit(fetch, name): name for name in names}
    done, _ = wait(futures, timeout=timeout)
    out = {}
    for future, name in futures.items():
        if future in done and future.exception() is None:
            out[name] = future.result()
        else:
            logger.warning("pipeline %s did not answer", name,
                           exc_info=future.exception() if future in done else None)
            out[name] = DOWN
    return out


def single_pipeline(builds: Builds, settings: SkillSettings) -> FixedPipelines:
    """One Builds port seen as the only pipeline, with the settings' permissions."""
    info = PipelineInfo(name=settings.pipeline, allowed_user_ids=settings.allowed_user_ids,
                        others_can_query=settings.others_can_query)
    return FixedPipelines({info: builds})


def pipeline_label(name: str, names: list[str], locale: str | None) -> str:
    """How an answer says a pipeline's name in ``locale`` (the first spoken form)."""
    return _labels(tuple(names if name in names else [*names, name]), locale or "en-US").get(
        name, name.replace("-", " "))


@functools.lru_cache(maxsize=64)
def _labels(names: tuple[str, ...], locale: str) -> dict[str, str]:
    return {entry.id: entry.value for entry in spoken_names(list(names), locale)}


class _Base(AbstractRequestHandler):
    """Shared plumbing: the port, settings, locale strings, and how to answer."""

    intent: str = ""

    def __init__(self, builds: Builds, settings: SkillSettings, pipelines: Pipelines | None = None) -> None:
        """``builds`` is the home pipeline's (notifications); ``pipelines`` every pipeline the skill
        answers for (default: ``builds`` alone)."""
        self.builds = builds
        self.settings = settings
        self.pipelines: Pipelines = pipelines if pipelines is not None else single_pipeline(builds, settings)

    # -- which pipeline ---------------------------------------------------------------------
    def names(self, handler_input: HandlerInput) -> list[str]:
        """The pipelines there are now (read once per request)."""
        cache = handler_input.attributes_manager.request_attributes
        if "pipelines" not in cache:
            cache["pipelines"] = self.pipelines.names()
        return list(cache["pipelines"])

    def named(self, handler_input: HandlerInput) -> tuple[str | None, str | None]:
        """(the pipeline the Pipeline slot names or None, what was said or None)."""
        said = _slot(handler_input, "Pipeline")
        if not said:
            return None, None
        names = self.names(handler_input)
        if names == [""]:  # one pipeline without a name: it answers whatever was said
            return "", said
        for ident in _resolved_ids(handler_input, "Pipeline"):
            if ident in names:
                return ident, said
        return match(said, names, handler_input.request_envelope.request.locale or "en-US"), said

    def label(self, handler_input: HandlerInput, name: str) -> str:
        return pipeline_label(name, self.names(handler_input), handler_input.request_envelope.request.locale)

    def tagged(self, handler_input: HandlerInput, name: str, text: str) -> str:
        """``text`` prefixed with the pipeline's name when there are several."""
        if len(self.names(handler_input)) < 2:
            return text
        return self.speech(handler_input).plain("FOR_PIPELINE", pipeline=_esc(self.label(handler_input, name)),
                                                answer=text)

    def told(self, handler_input: HandlerInput, name: str, builds: list[Build | None]) -> None:
        """Note which builds of ``name`` this answer told about (with several pipelines), so the
        next "since you last asked" leaves out those that had ended."""
        if len(self.names(handler_input)) < 2:
            return
        told = handler_input.attributes_manager.request_attributes.setdefault("told", {})
        told.setdefault(name, []).extend(b.number for b in builds if b is not None and b.done)

    def either(self, handler_input: HandlerInput, names: list[str]) -> str:
        """"wine or fraud", "wine, fraud or churn" in the request's language (SSML-safe)."""
        speech = self.speech(handler_input)
        said = [_esc(self.label(handler_input, n)) for n in names]
        if len(said) < 2:
            return "".join(said)
        return speech.raw("LIST_COMMA").join(said[:-1]) + speech.raw("WORD_OR") + said[-1]

    def unknown(self, handler_input: HandlerInput, said: str) -> Response:
        """The Pipeline slot names none we know: say which ones exist."""
        speech = self.speech(handler_input)
        names = self.names(handler_input)
        if len(names) == 1:
            return self.answer(handler_input, speech.say("UNKNOWN_PIPELINE", pipeline=self.label(handler_input, names[0])))
        if not names:
            return self.answer(handler_input, speech.raw("NO_PIPELINES"))
        return self.answer(handler_input, speech.plain("UNKNOWN_PIPELINE_OF", said=_esc(said),
                                                       known=self.either(handler_input, names)))

    def ask_first(self, handler_input: HandlerInput, chosen: str, pending: dict[str, Any], text: str,
                  reprompt: str) -> Response:
        """Keep the action (stop, retry, rollback) for the yes or no, and ask: what changes a
        pipeline is confirmed first."""
        handler_input.attributes_manager.session_attributes[PENDING] = {**pending, "pipeline": chosen}
        return self.answer(handler_input, text, keep_open=True, reprompt=reprompt)

    def choose_for_action(self, handler_input: HandlerInput) -> str | Response:
        """The pipeline a start, stop or rollback is for, or the response that asks or refuses.

        Named, else the one chosen earlier in this conversation, else the only one; with several
        it asks "which pipeline?" (keeping the request in the session). Refuses users the
        pipeline's own ``allowed_user_ids`` leaves out, naming it when there are several."""
        speech = self.speech(handler_input)
        session = handler_input.attributes_manager.session_attributes
        name, said = self.named(handler_input)
        if said and name is None:
            return self.unknown(handler_input, said)
        names = self.names(handler_input)
        if name is None:
            remembered = session.get(CHOSEN)
            if remembered in names:
                name = remembered
            elif len(names) == 1:
                name = names[0]
            elif not names:
                return self.answer(handler_input, speech.raw("NO_PIPELINES"))
            else:
                session[ASKING] = {"intent": self.intent, "slots": {
                    k: v for k in ("BuildNumber", "Version") if (v := _slot(handler_input, k)) not in (None, "?")}}
                question = speech.plain("WHICH_PIPELINE", choices=self.either(handler_input, names[:4]))
                response = self.answer(handler_input, question, keep_open=True, reprompt=question)
                response.directives = [*(response.directives or []), _elicit_pipeline(handler_input)]
                return response
        session.pop(ASKING, None)
        if len(names) > 1:
            session[CHOSEN] = name
        if not self.pipelines.info(name).may_act(self.user(handler_input)):
            if len(names) > 1:
                return self.answer(handler_input, speech.plain("NOT_ALLOWED_PIPELINE",
                                                               pipeline=_esc(self.label(handler_input, name))))
            return self.answer(handler_input, speech.raw("NOT_ALLOWED"))
        return name

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

    def find_build(self, handler_input: HandlerInput, builds: Builds | None = None) -> Build | None:
        """The build the user named (BuildNumber slot), else the latest; None if there are none."""
        number = _slot_number(handler_input)
        try:
            return (builds or self.builds).get(number)
        except BuildNotFound:
            if number is None:
                return None
            raise

    def live(self, builds: Builds | None = None) -> EndpointInfo | None:
        """The endpoint serving a model. One ``OutOfService`` serves nothing (on SageMaker, and
        locally while no engine runs: the ledger still names its version)."""
        for endpoint in (builds or self.builds).endpoints():
            if endpoint.model_version and endpoint.status != "OutOfService":
                return endpoint
        return None

    def refusal(self, handler_input: HandlerInput) -> Response | None:
        """A polite refusal if this user may not query; None if they may."""
        if self.settings.may_query(self.user(handler_input)):
            return None
        return self.answer(handler_input, self.speech(handler_input).raw("NOT_ALLOWED_QUERY"), keep_open=False)

    def not_found(self, handler_input: HandlerInput, builds: Builds | None = None) -> Response:
        speech = self.speech(handler_input)
        latest = (builds or self.builds).get(None)
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
    """Questions about builds: anyone allowed to ask may; a progressive response covers the lookup.

    A named pipeline (or the only one) gets :meth:`reply`; with several and none named the
    answer covers every pipeline the user may ask about (:meth:`across`)."""

    def handle(self, handler_input: HandlerInput) -> Response:
        speech = self.speech(handler_input)
        name, said = self.named(handler_input)
        if said and name is None:
            return self.unknown(handler_input, said)
        names = self.names(handler_input)
        if not names:
            return self.answer(handler_input, speech.raw("NO_PIPELINES"))
        user = self.user(handler_input)
        if name is None and len(names) == 1:
            name = names[0]
        if name is not None:
            if not self.pipelines.info(name).may_query(user):
                return self.answer(handler_input, speech.raw("NOT_ALLOWED_QUERY"), keep_open=False)
            self.progress(handler_input)
            builds = self.pipelines.builds(name)
            try:
                text = self.reply(handler_input, speech, builds, name)
            except BuildNotFound:
                return self.not_found(handler_input, builds)
            return self.answer(handler_input, self.tagged(handler_input, name, text))
        allowed = [n for n in names if self.pipelines.info(n).may_query(user)]
        if not allowed:
            return self.answer(handler_input, speech.raw("NOT_ALLOWED_QUERY"), keep_open=False)
        self.progress(handler_input)
        return self.answer(handler_input, self.across(handler_input, speech, allowed))

    @abstractmethod
    def reply(self, handler_input: HandlerInput, speech: Speech, builds: Builds, name: str) -> str:
        """The spoken answer to this question about one pipeline."""

    def across(self, handler_input: HandlerInput, speech: Speech, names: list[str]) -> str:
        """The answer across several pipelines: the build that matters most in each, one sentence
        each, running ones first, then the most recent ends (at most ACROSS_ITEMS, then "and N more")."""
        ranked = self.ranked(names)
        for n, build in ranked[:ACROSS_ITEMS]:
            if build is not DOWN:
                self.told(handler_input, n, [build])
        items = [self.down(handler_input, speech, n) if build is DOWN
                 else answers.across_item(self.label(handler_input, n), build, speech) for n, build in ranked]
        return answers.bounded(items, speech, ACROSS_ITEMS)

    def down(self, handler_input: HandlerInput, speech: Speech, name: str) -> str:
        return speech.plain("ACROSS_DOWN", pipeline=_esc(self.label(handler_input, name)))

    def ranked(self, names: list[str]) -> list[tuple[str, Any]]:
        """Each pipeline with its build that matters most (None: no builds; DOWN: not answering):
        running first, then the latest ended, then those without builds, then those down."""
        recent = gather(names, lambda name: self.pipelines.builds(name).list(5))
        found: list[tuple[str, Any]] = []
        for name in names:
            builds = recent[name]
            if builds is DOWN:
                found.append((name, DOWN))
                continue
            active = [b for b in builds if not b.done]
            found.append((name, active[0] if active else (builds[0] if builds else None)))

        def order(item: tuple[str, Any]) -> tuple[int, float]:
            build = item[1]
            if build is DOWN:
                return (3, 0.0)
            if build is None:
                return (2, 0.0)
            if not build.done:
                return (0, -(build.started_at or build.created_at or 0))
            return (1, -(build.ended_at or build.created_at or 0))
        return sorted(found, key=order)


class BuildStatusHandler(_QueryHandler):
    intent = "BuildStatusIntent"

    def reply(self, handler_input: HandlerInput, speech: Speech, builds: Builds, name: str) -> str:
        build, live = self.find_build(handler_input, builds), self.live(builds)
        screens.offer(handler_input, build, live, speech)
        self.told(handler_input, name, [build])
        return answers.status_answer(build, live, speech)


class BuildDetailsHandler(_QueryHandler):
    intent = "BuildDetailsIntent"

    def reply(self, handler_input: HandlerInput, speech: Speech, builds: Builds, name: str) -> str:
        build, live = self.find_build(handler_input, builds), self.live(builds)
        screens.offer(handler_input, build, live, speech)
        self.told(handler_input, name, [build])
        return answers.details_answer(build, live, speech)

    def across(self, handler_input: HandlerInput, speech: Speech, names: list[str]) -> str:
        """Details of the build that matters most across the pipelines, naming its pipeline."""
        name, build = self.ranked(names)[0]
        if build is DOWN:
            return self.down(handler_input, speech, name)
        live = self.live(self.pipelines.builds(name))
        self.told(handler_input, name, [build])
        return self.tagged(handler_input, name, answers.details_answer(build, live, speech))


class LiveModelHandler(_QueryHandler):
    intent = "LiveModelIntent"

    def reply(self, handler_input: HandlerInput, speech: Speech, builds: Builds, name: str) -> str:
        live = self.live(builds)
        build = builds.get(live.build_id) if live and live.build_id else None
        pipeline = (build.pipeline if build else None) or name or self.settings.pipeline or (live.name if live else "")
        screens.offer(handler_input, build, live, speech)
        return answers.live_answer(live, build, pipeline, speech)

    def across(self, handler_input: HandlerInput, speech: Speech, names: list[str]) -> str:
        lives = gather(names, lambda name: self.live(self.pipelines.builds(name)))
        items = [self.down(handler_input, speech, n) if lives[n] is DOWN
                 else answers.across_live(self.label(handler_input, n), lives[n], speech) for n in names]
        return answers.bounded(items, speech, ACROSS_ITEMS)


class ListBuildsHandler(_QueryHandler):
    intent = "ListBuildsIntent"

    def reply(self, handler_input: HandlerInput, speech: Speech, builds: Builds, name: str) -> str:
        listed = builds.list(5)
        self.told(handler_input, name, list(listed))
        return answers.list_answer(listed, speech)

    def across(self, handler_input: HandlerInput, speech: Speech, names: list[str]) -> str:
        """The five newest builds of all the pipelines together, each naming its pipeline."""
        recent = gather(names, lambda name: self.pipelines.builds(name).list(5))
        merged = [(n, b) for n in names if recent[n] is not DOWN for b in recent[n]]
        merged.sort(key=lambda item: -(item[1].created_at or 0))
        for n, build in merged[:5]:
            self.told(handler_input, n, [build])
        text = answers.list_across([(self.label(handler_input, n), b) for n, b in merged[:5]], speech)
        down = [self.down(handler_input, speech, n) for n in names if recent[n] is DOWN]
        return " ".join([text, *down])


class StartBuildHandler(_Base):
    intent = "StartBuildIntent"

    def handle(self, handler_input: HandlerInput) -> Response:
        speech = self.speech(handler_input)
        chosen = self.choose_for_action(handler_input)
        if not isinstance(chosen, str):
            return chosen
        builds = self.pipelines.builds(chosen)
        running = [b for b in builds.list(5) if b.status == BuildStatus.RUNNING]
        try:
            build = builds.start("started by voice", source="voice")
        except AlreadyRunning:
            text = speech.say("START_REFUSED", running=running[0].number if running else "?")
        except ConfigError as exc:
            text = speech.say("START_CONFIG_ERROR", reason=str(exc))
        else:
            if build.status == BuildStatus.QUEUED:
                text = speech.say("START_QUEUED", number=build.number, running=running[0].number if running else "?")
            else:
                text = speech.say("START_STARTED", number=build.number)
        return self.answer(handler_input, self.tagged(handler_input, chosen, text))


class StopBuildHandler(_Base):
    """Asks first, naming the build; YesIntent then stops it."""

    intent = "StopBuildIntent"

    def handle(self, handler_input: HandlerInput) -> Response:
        speech = self.speech(handler_input)
        chosen = self.choose_for_action(handler_input)
        if not isinstance(chosen, str):
            return chosen
        builds = self.pipelines.builds(chosen)
        try:
            build = self.find_build(handler_input, builds) if _slot_number(handler_input) is not None \
                else self._active(builds)
        except BuildNotFound:
            return self.not_found(handler_input, builds)
        if build is None:
            return self.answer(handler_input, self.tagged(handler_input, chosen, speech.raw("STOP_NOTHING")))
        if build.done:
            return self.answer(handler_input, self.tagged(handler_input, chosen,
                                                          speech.say("STOP_ALREADY_ENDED", number=build.number)))
        step = speech.step(build.current_step) if build.status == BuildStatus.RUNNING else speech.raw("WORD_QUEUED")
        text = self.tagged(handler_input, chosen, speech.plain("STOP_CONFIRM", number=build.number, step=step))
        return self.ask_first(handler_input, chosen, {"action": "stop", "build": build.number}, text,
                              speech.say("STOP_CONFIRM_REPROMPT", number=build.number))

    @staticmethod
    def _active(builds: Builds) -> Build | None:
        recent = builds.list(20)
        for status in (BuildStatus.RUNNING, BuildStatus.QUEUED):
            for build in recent:
                if build.status == status:
                    return build
        return None


class RetryBuildHandler(_Base):
    """Asks first, naming the build and the step it goes on from; YesIntent then retries it."""

    intent = "RetryBuildIntent"

    def handle(self, handler_input: HandlerInput) -> Response:
        speech = self.speech(handler_input)
        chosen = self.choose_for_action(handler_input)
        if not isinstance(chosen, str):
            return chosen
        builds = self.pipelines.builds(chosen)
        try:
            build = self.find_build(handler_input, builds)
        except BuildNotFound:
            return self.not_found(handler_input, builds)
        if build is None:
            return self.answer(handler_input, self.tagged(handler_input, chosen, speech.raw("RETRY_NOTHING")))
        refusal = _not_retryable(build)
        if refusal is not None:
            return self.answer(handler_input, self.tagged(handler_input, chosen,
                                                          speech.say(refusal, number=build.number)))
        text = self.tagged(handler_input, chosen, speech.plain("RETRY_CONFIRM", number=build.number,
                                                               step=speech.step(retry_step(build))))
        return self.ask_first(handler_input, chosen, {"action": "retry", "build": build.number}, text,
                              speech.say("RETRY_CONFIRM_REPROMPT", number=build.number))


def retry_step(build: Build) -> str:
    """The step a retry of this build goes on from (as the build service decides)."""
    from lambda_pipeline.steps.replay import entry_step
    return entry_step(build)


def _not_retryable(build: Build) -> str | None:
    """The speech key that says why this build cannot be retried, or None if it can."""
    if build.status == BuildStatus.GATE_FAILED:
        return "RETRY_JUDGED"
    if build.status in (BuildStatus.RUNNING, BuildStatus.QUEUED):
        return "RETRY_NOT_ENDED"
    if build.status == BuildStatus.SUCCEEDED:
        return "RETRY_SUCCEEDED"
    if build.config is None:
        return "RETRY_NEVER_STARTED"
    return None


class RollbackHandler(_Base):
    """Asks first, naming the version it goes back to; YesIntent then rolls back."""

    intent = "RollbackIntent"

    def handle(self, handler_input: HandlerInput) -> Response:
        speech = self.speech(handler_input)
        chosen = self.choose_for_action(handler_input)
        if not isinstance(chosen, str):
            return chosen
        builds = self.pipelines.builds(chosen)
        wanted = _slot_number(handler_input, "Version")
        try:
            plan = builds.plan_rollback(f"v{wanted}" if wanted is not None else None)
        except NothingToRollBack as exc:
            return self.answer(handler_input, self.tagged(handler_input, chosen,
                                                          speech.say("ROLLBACK_NOTHING", reason=str(exc))))
        except NotFound:
            return self.answer(handler_input, self.tagged(handler_input, chosen,
                                                          speech.say("ROLLBACK_NOT_FOUND", version=wanted)))
        spoken = self.label(handler_input, chosen) if len(self.names(handler_input)) > 1 else plan["pipeline"].replace("-", " ")
        text = speech.say("ROLLBACK_CONFIRM", pipeline=spoken,
                          current=speech.version(plan["from"]), target=speech.version(plan["to"]))
        return self.ask_first(handler_input, chosen, {"action": "rollback", "version": plan["to"], "from": plan["from"]},
                              text, speech.say("ROLLBACK_CONFIRM_REPROMPT", target=speech.version(plan["to"])))


class YesHandler(_Base):
    intent = "AMAZON.YesIntent"

    def handle(self, handler_input: HandlerInput) -> Response:
        speech = self.speech(handler_input)
        pending = handler_input.attributes_manager.session_attributes.pop(PENDING, None)
        if not pending:
            return self.answer(handler_input, speech.raw("NOTHING_TO_CONFIRM"), keep_open=True)
        name = pending.get("pipeline", self.settings.pipeline)
        if not self.pipelines.info(name).may_act(self.user(handler_input)):
            return self.answer(handler_input, speech.raw("NOT_ALLOWED"), keep_open=False)
        builds = self.pipelines.builds(name)
        if pending.get("action") == "rollback":
            return self._roll_back(handler_input, speech, pending, builds, name)
        if pending.get("action") == "retry":
            return self._retry(handler_input, speech, pending, builds, name)
        number = pending["build"]
        try:
            builds.stop(number)
        except NothingToStop:
            text = speech.say("STOP_ALREADY_ENDED", number=number)
        else:
            text = speech.say("STOP_DONE", number=number)
        return self.answer(handler_input, self.tagged(handler_input, name, text), keep_open=False)

    def _retry(self, handler_input: HandlerInput, speech: Speech, pending: dict[str, Any], builds: Builds,
               name: str) -> Response:
        number = pending["build"]
        try:
            build = builds.retry(number)
        except AlreadyRunning:
            running = next((b for b in builds.list(5) if b.status == BuildStatus.RUNNING), None)
            text = speech.say("RETRY_BUSY", number=number, running=running.number if running else "")
        except NotRetryable:
            current = builds.get(number)
            text = speech.say(_not_retryable(current) or "RETRY_NOT_ENDED", number=number)
        else:
            text = speech.say("RETRY_DONE", number=number, step=speech.step(build.current_step),
                              ordinal=speech.ordinal(build.attempt))
        return self.answer(handler_input, self.tagged(handler_input, name, text), keep_open=False)

    def _roll_back(self, handler_input: HandlerInput, speech: Speech, pending: dict[str, Any], builds: Builds,
                   name: str) -> Response:
        try:
            info = builds.rollback(pending["version"])
        except AlreadyRunning:
            text = speech.raw("ROLLBACK_BUSY")
        except (NothingToRollBack, NotFound, DeployFailed) as exc:
            text = speech.say("ROLLBACK_FAILED", reason=str(exc))
        else:
            key = "ROLLBACK_STARTED" if info.status == "Updating" else "ROLLBACK_DONE"
            text = speech.say(key, version=speech.version(info.model_version))
        return self.answer(handler_input, self.tagged(handler_input, name, text), keep_open=False)


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
        key = "RETRY_KEEP" if pending.get("action") == "retry" else "STOP_KEEP"
        return self.answer(handler_input, speech.say(key, number=pending["build"]), keep_open=False)


class PipelineAnswerHandler(_Base):
    """The answer to "which pipeline?": any request naming a pipeline while an action waits for one
    continues that action (the start, stop or rollback asked before), for that pipeline."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        if not is_request_type("IntentRequest")(handler_input):
            return False
        asking = handler_input.attributes_manager.session_attributes.get(ASKING)
        return bool(asking) and bool(_slot(handler_input, "Pipeline"))

    def handle(self, handler_input: HandlerInput) -> Response:
        from ask_sdk_model import Intent, Slot
        asking = handler_input.attributes_manager.session_attributes[ASKING]
        request: Any = handler_input.request_envelope.request
        slots = dict(request.intent.slots or {})
        for key, value in (asking.get("slots") or {}).items():
            slots.setdefault(key, Slot(name=key, value=value))
        request.intent = Intent(name=asking["intent"], slots=slots)
        for handler in self._actions:
            if handler.intent == asking["intent"]:
                return handler.handle(handler_input)
        handler_input.attributes_manager.session_attributes.pop(ASKING, None)
        return self.answer(handler_input, self.speech(handler_input).raw("FALLBACK"))

    _actions: list[_Base] = []


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


def handlers_for(builds: Builds, settings: SkillSettings,
                 pipelines: Pipelines | None = None) -> list[AbstractRequestHandler]:
    """Every request handler, in dispatch order (``pipelines``: every pipeline answered for)."""
    classes: list[type[_Base]] = [
        LaunchHandler, BuildStatusHandler, StartBuildHandler, StopBuildHandler, BuildDetailsHandler,
        LiveModelHandler, ListBuildsHandler, RollbackHandler, RetryBuildHandler, YesHandler, NoHandler, HelpHandler, StopCancelHandler,
        NavigateHomeHandler, FallbackHandler, SessionEndedHandler]
    handlers = [cls(builds, settings, pipelines) for cls in classes]
    answer = PipelineAnswerHandler(builds, settings, pipelines)
    answer._actions = [h for h in handlers if isinstance(h, (StartBuildHandler, StopBuildHandler, RollbackHandler,
                                                                     RetryBuildHandler))]
    return [answer, *handlers]


# The intents the code handles; the lint test checks each locale's model has exactly these.
HANDLED_INTENTS = frozenset({"BuildStatusIntent", "StartBuildIntent", "StopBuildIntent", "BuildDetailsIntent",
                             "LiveModelIntent", "ListBuildsIntent", "RollbackIntent", "RetryBuildIntent", "AMAZON.HelpIntent", "AMAZON.CancelIntent",
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


def _resolved_ids(handler_input: HandlerInput, name: str) -> list[str]:
    """The ids entity resolution matched, the dynamic authority (this session's pipelines) first."""
    try:
        slot = handler_input.request_envelope.request.intent.slots[name]
        authorities = list(slot.resolutions.resolutions_per_authority or [])
    except (AttributeError, KeyError, TypeError):
        return []
    authorities.sort(key=lambda a: 0 if ".dynamic." in str(getattr(a, "authority", "")) else 1)
    found = []
    for authority in authorities:
        try:
            if authority.status.code.value == "ER_SUCCESS_MATCH":
                found += [v.value.id for v in authority.values or [] if v.value and v.value.id]
        except AttributeError:
            continue
    return found


def _elicit_pipeline(handler_input: HandlerInput) -> Any:
    """``Dialog.ElicitSlot`` for the Pipeline slot of the request's intent (the models' dialog
    section declares it), so Alexa hears a bare "fraud" as the answer."""
    from ask_sdk_model import Intent, IntentConfirmationStatus
    from ask_sdk_model.dialog import ElicitSlotDirective
    request: Any = handler_input.request_envelope.request
    intent = Intent(name=request.intent.name, slots=request.intent.slots or {},
                    confirmation_status=IntentConfirmationStatus.NONE)
    return ElicitSlotDirective(slot_to_elicit="Pipeline", updated_intent=intent)


def _esc(text: str) -> str:
    from .speech import ssml_escape
    return ssml_escape(text)
