"""What a notification says, in one line, plain text and HTML (pure; shared by every sink)."""
from __future__ import annotations

import html
from typing import Any

__all__ = ["summary", "text_body", "html_body", "subject"]

_VERBS = {"build.started": "started", "build.succeeded": "succeeded", "build.failed": "failed",
          "build.gate_failed": "did not pass the gate", "build.stopped": "was stopped",
          "build.interrupted": "was interrupted", "model.rolled_back": "rolled back",
          "model.rollback_failed": "could not roll back", "schedule.missed": "missed scheduled runs"}


def summary(event: str, payload: dict[str, Any]) -> str:
    """One line: what happened to which build, and why if it failed."""
    if event == "model.rolled_back":
        return f"{payload.get('pipeline')}: rolled back from {payload.get('from_version')} to {payload.get('to_version')}"
    if event == "model.rollback_failed":
        return (f"{payload.get('pipeline')}: the rollback of {payload.get('endpoint')} from {payload.get('from')} "
                f"to {payload.get('to')} failed: {payload.get('reason')}")
    if event == "schedule.missed":
        return f"{payload.get('pipeline')}: {len(payload.get('missed', []))} scheduled run(s) missed while the engine was down"
    line = f"{payload.get('pipeline')} build #{payload.get('build_number')} {_VERBS.get(event, event)}"
    if payload.get("version"):
        line += f" ({payload['version']})"
    if payload.get("failure_reason"):
        line += f" at {payload.get('failed_step')}: {payload['failure_reason']}"
    return line


def subject(event: str, payload: dict[str, Any]) -> str:
    return f"[SageBuild] {summary(event, payload)}"[:100]


def _facts(payload: dict[str, Any]) -> list[tuple[str, str]]:
    facts = []
    for key, label in (("build_number", "Build"), ("version", "Version"), ("status", "Status"),
                       ("duration_seconds", "Duration (s)"), ("failed_step", "Failed step"),
                       ("failure_reason", "Reason")):
        if payload.get(key) not in (None, ""):
            facts.append((label, str(payload[key])))
    gate = payload.get("gate") or {}
    if gate.get("metric"):
        facts.append(("Gate", f"{gate['metric']} = {gate.get('value')} (minimum {gate.get('minimum')})"))
    for trigger in payload.get("triggers") or []:
        facts.append(("Trigger", f"{trigger.get('source')}: {trigger.get('reason')}"))
    live = payload.get("live") or {}
    if live.get("version"):
        facts.append(("Live now", f"{live['version']} on {live.get('endpoint')}"))
    return facts


def text_body(event: str, payload: dict[str, Any]) -> str:
    lines = [summary(event, payload), ""]
    lines += [f"{label}: {value}" for label, value in _facts(payload)]
    return "\n".join(lines) + "\n"


def html_body(event: str, payload: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
                   for label, value in _facts(payload))
    return f"<html><body><p><b>{html.escape(summary(event, payload))}</b></p><table>{rows}</table></body></html>"
