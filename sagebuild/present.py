"""How builds look in a terminal: one-line rows, details, timelines (pure string functions)."""
from __future__ import annotations

import time
from typing import Any

from lambda_pipeline.model import Build, StepRecord

__all__ = ["build_row", "build_details", "timeline", "ago", "seconds"]


def seconds(value: float | None) -> str:
    """``0.4s``, ``12s``, ``3m 05s``, ``1h 02m``."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.1f}s"
    value = int(round(value))
    if value < 60:
        return f"{value}s"
    if value < 3600:
        return f"{value // 60}m {value % 60:02d}s"
    return f"{value // 3600}h {value % 3600 // 60:02d}m"


def ago(when: float | None, now: float | None = None) -> str:
    """``just now``, ``12 minutes ago``, ``3 hours ago``, ``2 days ago``."""
    if when is None:
        return "-"
    delta = max(0, int((now if now is not None else time.time()) - when))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if delta >= size:
            n = delta // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now" if delta < 10 else f"{delta} seconds ago"


def _metric(build: Build) -> str:
    return "  ".join(f"{k}={v:.4g}" for k, v in sorted(build.metrics.items()))


def build_row(build: Build, now: float | None = None) -> str:
    status = build.status if build.done or not build.current_step else f"{build.status}:{build.current_step}"
    return (f"#{build.number:<4} {status:<20} {build.version or '-':<6} {seconds(build.duration):>8}  "
            f"{ago(build.created_at, now):<16} {build.trigger_source}: {build.reason}"
            + (f"  [{_metric(build)}]" if build.metrics else ""))


_ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}


def attempt_words(attempt: int) -> str:
    """``second attempt`` for 2: how a retried build's attempt is named."""
    return f"{_ORDINALS.get(attempt, f'{attempt}th')} attempt"


def build_details(build: Build, now: float | None = None) -> str:
    attempt = f", {attempt_words(build.attempt)}" if build.attempt > 1 else ""
    lines = [f"Build #{build.number} ({build.id}) of {build.pipeline}: {build.status}{attempt}"]
    lines.append(f"  started   {ago(build.started_at or build.created_at, now)} by {build.trigger_source}: "
                 f"{build.reason}")
    if build.version:
        lines.append(f"  version   {build.version}")
    for run in build.runs:
        how = "retried" if run["kind"] == "retry" else "resumed"
        lines.append(f"  {how:<9} {ago(run['at'], now)} from {run['from']}"
                     + (" (the engine had stopped)" if run["kind"] == "resume" else f" ({attempt_words(run['attempt'])})"))
    if not build.done and build.current_step:
        lines.append(f"  step      {build.current_step} (running for {seconds(build.duration)})")
    if build.done:
        lines.append(f"  took      {seconds(build.duration)}")
    if build.failure_reason:
        lines.append(f"  failed at {build.failed_step or '-'}: {build.failure_reason}")
    if build.metrics:
        lines.append(f"  metrics   {_metric(build)}")
    if build.hyperparameters:
        lines.append("  overrides " + ", ".join(f"{k}={v}" for k, v in build.hyperparameters.items()))
    if build.endpoint_config and build.status == "SUCCEEDED":
        lines.append(f"  deployed  {build.endpoint_name} serves {build.endpoint_config}")
    if build.steps:
        lines.append(timeline(build.steps, indent="  "))
    return "\n".join(lines)


def timeline(steps: list[StepRecord], width: int = 32, indent: str = "") -> str:
    """Steps as bars on one time axis, with durations."""
    if not steps:
        return f"{indent}(no steps yet)"
    start = min(s.started_at for s in steps)
    end = max((s.ended_at or time.time()) for s in steps)
    span = max(end - start, 1e-6)
    rows = []
    for step in steps:
        stop = step.ended_at or time.time()
        left = int((step.started_at - start) / span * width)
        size = max(1, int(round((stop - step.started_at) / span * width)))
        bar = " " * left + "█" * min(size, width - left)
        mark = {"SUCCEEDED": "ok", "RUNNING": ".."}.get(step.status, step.status.lower())
        rows.append(f"{indent}{step.name:<11} |{bar:<{width}}| {seconds(step.duration if step.ended_at else stop - step.started_at):>7} {mark}")
    rows.append(f"{indent}{'total':<11}  {'':<{width}}  {seconds(span):>7}")
    return "\n".join(rows)


def as_json(build: Build, with_config: bool = False) -> dict[str, Any]:
    data = build.to_dict(with_config=with_config)
    data["duration"] = build.duration
    return data
