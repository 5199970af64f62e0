"""The build card shown on devices with a screen: an APL RenderDocument next to the spoken answer.

Why a module of its own: the answer is spoken everywhere, but the card is sent only when the
request's ``context.System.device.supportedInterfaces`` lists ``Alexa.Presentation.APL`` (a
directive a device cannot render makes Alexa reject the whole response). Everything on the card
comes from the same records as the speech, in the request's language.
"""
from __future__ import annotations

import logging
from typing import Any

from lambda_pipeline.model import STEPS, Build, BuildStatus, EndpointInfo

from .speech import Speech

__all__ = ["supports_apl", "card_data", "render_directive", "offer", "TOKEN"]

logger = logging.getLogger(__name__)

TOKEN = "sagebuild-build-card"
_DOCUMENT: dict[str, Any] = {
    "type": "APL",
    "version": "2023.3",
    "theme": "dark",
    "mainTemplate": {
        "parameters": ["payload"],
        "items": [{
            "type": "Container",
            "width": "100vw",
            "height": "100vh",
            "paddingLeft": "6vw",
            "paddingTop": "6vh",
            "items": [
                {"type": "Text", "text": "${payload.card.title}", "fontSize": "48dp", "fontWeight": "bold"},
                {"type": "Text", "text": "${payload.card.status}", "fontSize": "32dp", "color": "${payload.card.color}",
                 "paddingBottom": "16dp"},
                {"type": "Sequence", "height": "60vh", "data": "${payload.card.rows}",
                 "items": [{"type": "Text", "fontSize": "26dp", "paddingBottom": "8dp",
                            "text": "${data.label}: ${data.value}"}]},
            ],
        }],
    },
}
_COLORS = {BuildStatus.SUCCEEDED: "#3fb950", BuildStatus.RUNNING: "#58a6ff", BuildStatus.QUEUED: "#8b949e"}
_FAILED_COLOR = "#f85149"


def supports_apl(handler_input: Any) -> bool:
    """Whether the device that sent this request renders APL."""
    try:
        interfaces = handler_input.request_envelope.context.system.device.supported_interfaces
        return interfaces is not None and interfaces.alexa_presentation_apl is not None
    except AttributeError:
        return False


def _planned_steps(build: Build) -> list[str]:
    """The steps this build goes through (the image build only when it builds one)."""
    ran = {step.name for step in build.steps}
    wants_image = bool(((build.config or {}).get("image") or {}).get("build")) if build.config else False
    return [s for s in STEPS if s != "BuildImage" or "BuildImage" in ran or wants_image]


def _progress(build: Build, speech: Speech) -> str:
    planned = _planned_steps(build)
    total = len(planned)
    if build.status == BuildStatus.SUCCEEDED:
        return speech.plain("SCREEN_STEP_PROGRESS", step=speech.raw("SCREEN_STEPS_DONE"), current=total, total=total)
    if build.status == BuildStatus.QUEUED:
        return speech.plain("SCREEN_STEP_PROGRESS", step=speech.raw("SCREEN_STEPS_WAITING"), current=0, total=total)
    step = build.current_step if build.status == BuildStatus.RUNNING else (build.failed_step or build.current_step)
    current = planned.index(step) + 1 if step in planned else len({s.name for s in build.steps if s.ended_at})
    return speech.plain("SCREEN_STEP_PROGRESS", step=speech.step(step), current=current, total=total)


def _gate(build: Build | None, speech: Speech) -> str:
    if build is None or not build.metrics:
        return speech.raw("SCREEN_NONE")
    gate = ((build.config or {}).get("gate") or {}).get("metric")
    name = gate if gate in build.metrics else sorted(build.metrics)[0]
    return f"{name} {speech.number(build.metrics[name])}"


def card_data(build: Build | None, live: EndpointInfo | None, speech: Speech) -> dict[str, Any]:
    """The card's content: title, status, and rows for the step, the gate metric and the live version."""
    live_text = (speech.say("SCREEN_LIVE_VERSION", version=speech.version(live.model_version))
                 if live is not None and live.model_version else speech.raw("SCREEN_NONE"))
    if build is None:
        return {"title": speech.raw("SCREEN_LIVE_TITLE"), "status": live_text, "color": _COLORS[BuildStatus.QUEUED],
                "rows": [{"label": speech.raw("SCREEN_LIVE_LABEL"), "value": live_text}]}
    return {
        "title": speech.plain("SCREEN_TITLE", number=build.number),
        "status": speech.raw(f"SCREEN_STATUS_{build.status}"),
        "color": _COLORS.get(build.status, _FAILED_COLOR),
        "rows": [{"label": speech.raw("SCREEN_STEP_LABEL"), "value": _progress(build, speech)},
                 {"label": speech.raw("SCREEN_GATE_LABEL"), "value": _gate(build, speech)},
                 {"label": speech.raw("SCREEN_LIVE_LABEL"), "value": live_text}],
    }


def render_directive(build: Build | None, live: EndpointInfo | None, speech: Speech) -> Any:
    """An ``Alexa.Presentation.APL.RenderDocument`` directive showing the card."""
    from ask_sdk_model.interfaces.alexa.presentation.apl import RenderDocumentDirective
    return RenderDocumentDirective(token=TOKEN, document=_DOCUMENT,
                                   datasources={"payload": {"card": card_data(build, live, speech)}})


def offer(handler_input: Any, build: Build | None, live: EndpointInfo | None, speech: Speech) -> bool:
    """Add the card to this response if the device has a screen; True if it was added."""
    if not supports_apl(handler_input) or (build is None and (live is None or not live.model_version)):
        return False
    handler_input.response_builder.add_directive(render_directive(build, live, speech))
    return True
