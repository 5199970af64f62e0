"""What the skill says about builds: short, true, actionable. Pure functions of records + Speech."""
from __future__ import annotations

from lambda_pipeline.model import Build, BuildStatus, EndpointInfo

from .speech import Speech, ssml_escape

__all__ = ["status_answer", "details_answer", "live_answer", "list_answer", "reason_sentence", "across_item",
           "across_live", "bounded", "list_across"]


def reason_sentence(reason: str | None) -> str:
    """One sentence of a failure reason: its first line, without a trailing period."""
    text = (reason or "").strip().splitlines()[0] if (reason or "").strip() else ""
    return text.rstrip(". ")


def _gate_metric(build: Build, speech: Speech) -> str:
    gate = ((build.config or {}).get("gate") or {}).get("metric")
    if gate and gate in build.metrics:
        return speech.metric(gate, build.metrics[gate])
    if build.metrics:
        name = sorted(build.metrics)[0]
        return speech.metric(name, build.metrics[name])
    return ""


def _live_clause(build: Build, live: EndpointInfo | None, speech: Speech) -> str:
    if live is None or live.model_version is None:
        return speech.raw("LIVE_NOTHING")
    if live.model_version == build.version:
        return speech.raw("LIVE_IS_THIS")
    return speech.say("LIVE_IS_OTHER", version=speech.version(live.model_version))


def status_answer(build: Build | None, live: EndpointInfo | None, speech: Speech, now: float | None = None) -> str:
    """The answer to "is my build done?" (naming the attempt of a retried build)."""
    text = _status_sentence(build, live, speech, now)
    if build is not None and build.attempt > 1:
        text = f"{text} {speech.say('STATUS_ATTEMPT', ordinal=speech.ordinal(build.attempt))}"
    return text


def _status_sentence(build: Build | None, live: EndpointInfo | None, speech: Speech, now: float | None) -> str:
    if build is None:
        return speech.raw("NO_BUILDS")
    n = build.number
    if build.status == BuildStatus.QUEUED:
        return speech.say("STATUS_QUEUED", number=n)
    if build.status == BuildStatus.RUNNING:
        return speech.plain("STATUS_RUNNING", number=n, step=speech.step(build.current_step),
                            ago=speech.ago(build.started_at or build.created_at, now))
    ago = speech.ago(build.ended_at or build.created_at, now)
    step = speech.step(build.failed_step)
    if build.status == BuildStatus.SUCCEEDED:
        return speech.plain("STATUS_SUCCEEDED", number=n, ago=ago, version=speech.version(build.version),
                            metric=_gate_metric(build, speech), live=_live_clause(build, live, speech)).strip()
    if build.status == BuildStatus.GATE_FAILED:
        return speech.plain("STATUS_GATE_FAILED", number=n, ago=ago,
                            reason=speech.say("SOURCE_OTHER", source=reason_sentence(build.failure_reason)))
    if build.status == BuildStatus.ABORTED:
        return speech.plain("STATUS_ABORTED", number=n, ago=ago, step=step)
    if build.status == BuildStatus.INTERRUPTED:
        return speech.plain("STATUS_INTERRUPTED", number=n, ago=ago, step=step)
    return speech.plain("STATUS_FAILED", number=n, ago=ago, step=step,
                        reason=speech.say("SOURCE_OTHER", source=reason_sentence(build.failure_reason)))


def details_answer(build: Build | None, live: EndpointInfo | None, speech: Speech, now: float | None = None) -> str:
    """The answer to "why did my build fail?" / "details of the last build"."""
    if build is None:
        return speech.raw("NO_BUILDS")
    parts = [status_answer(build, live, speech, now),
             speech.plain("DETAILS_TRIGGER", source=speech.source(build.trigger_source),
                          reason=speech.say("SOURCE_OTHER", source=build.reason))]
    if build.done and build.duration is not None:
        parts.append(speech.plain("DETAILS_DURATION", duration=speech.duration(build.duration)))
    elif build.status == BuildStatus.RUNNING:
        parts.append(speech.plain("DETAILS_RUNNING_FOR", duration=speech.duration(build.duration)))
    return " ".join(parts)


def live_answer(live: EndpointInfo | None, build: Build | None, pipeline: str, speech: Speech,
                now: float | None = None) -> str:
    """The answer to "what model is live?"."""
    if live is None or live.model_version is None:
        return speech.raw("NO_LIVE_MODEL")
    metric = _gate_metric(build, speech) if build is not None else ""
    return speech.plain("LIVE_MODEL", version=speech.say("SOURCE_OTHER", source=speech.version(live.model_version)),
                        pipeline=speech.say("SOURCE_OTHER", source=pipeline.replace("-", " ")),
                        ago=speech.ago(live.updated_at, now), number=build.number if build else "?", metric=metric)


def list_answer(builds: list[Build], speech: Speech, now: float | None = None) -> str:
    """The answer to "list my builds" (at most five, newest first)."""
    if not builds:
        return speech.raw("NO_BUILDS")
    items = []
    for build in builds[:5]:
        when = build.ended_at if build.done else (build.started_at or build.created_at)
        items.append(speech.plain("LIST_ITEM", number=build.number, status=speech.raw(f"WORD_{build.status}"),
                                  ago=speech.ago(when, now)))
    return (speech.plain("LIST_INTRO", count=len(items)) + " " + speech.raw("LIST_SEPARATOR").join(items)
            + speech.raw("LIST_END"))


def across_item(pipeline: str, build: Build | None, speech: Speech, now: float | None = None) -> str:
    """One pipeline's sentence in an answer across pipelines: its build that matters most."""
    label = ssml_escape(pipeline)
    if build is None:
        return speech.plain("ACROSS_NONE", pipeline=label)
    when = build.ended_at if build.done else (build.started_at or build.created_at)
    return speech.plain("ACROSS_ITEM", pipeline=label, number=build.number,
                        status=speech.raw(f"WORD_{build.status}"), ago=speech.ago(when, now))


def across_live(pipeline: str, live: EndpointInfo | None, speech: Speech, now: float | None = None) -> str:
    """One pipeline's sentence of "what's live?" across pipelines."""
    label = ssml_escape(pipeline)
    if live is None or live.model_version is None or live.status == "OutOfService":
        return speech.plain("ACROSS_NO_LIVE", pipeline=label)
    return speech.plain("ACROSS_LIVE", pipeline=label, version=speech.version(live.model_version),
                        ago=speech.ago(live.updated_at, now))


def bounded(items: list[str], speech: Speech, limit: int) -> str:
    """At most ``limit`` sentences, then "and N more" (answers stay within Alexa's speech limits)."""
    text = " ".join(items[:limit])
    if len(items) > limit:
        text += " " + speech.plain("ACROSS_MORE", count=len(items) - limit)
    return text


def list_across(builds: list[tuple[str, Build]], speech: Speech, now: float | None = None) -> str:
    """"list my builds" across pipelines: the newest first, each naming its pipeline."""
    if not builds:
        return speech.raw("NO_BUILDS")
    items = []
    for pipeline, build in builds:
        when = build.ended_at if build.done else (build.started_at or build.created_at)
        items.append(speech.plain("ACROSS_LIST_ITEM", pipeline=ssml_escape(pipeline), number=build.number,
                                  status=speech.raw(f"WORD_{build.status}"), ago=speech.ago(when, now)))
    return (speech.plain("LIST_INTRO", count=len(items)) + " " + speech.raw("LIST_SEPARATOR").join(items)
            + speech.raw("LIST_END"))
