"""Timeline charts for notebooks (matplotlib): one build's steps, or steps across builds."""
from __future__ import annotations

import time
from typing import Any

__all__ = ["steps_chart", "trend_chart"]

_PALETTE = {"Initialize": "#8c959f", "BuildImage": "#6e7781", "Train": "#0969da", "Evaluate": "#bf8700",
            "Register": "#8250df", "Deploy": "#1a7f37", "VerifyLive": "#2da44e", "Notify": "#57606a"}


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure  # no pyplot: no global state, works headless
    return Figure(figsize=(width, height), layout="constrained")


def steps_chart(build: Any) -> Any:
    """A Gantt chart of one build's steps, durations written on the bars."""
    fig = _figure(8, 0.45 * max(3, len(build.steps)) + 1)
    ax = fig.add_subplot()
    if not build.steps:
        ax.text(0.5, 0.5, f"build #{build.number} has no steps yet", ha="center", va="center")
        ax.set_axis_off()
        return fig
    start = min(s.started_at for s in build.steps)
    for row, step in enumerate(reversed(build.steps)):
        left = step.started_at - start
        width = max((step.ended_at or time.time()) - step.started_at, 0.02)
        ax.barh(row, width, left=left, color=_PALETTE.get(step.name, "#0969da"),
                hatch="//" if step.status not in ("SUCCEEDED", "RUNNING") else None)
        ax.text(left + width, row, f" {width:.1f}s", va="center", fontsize=8)
    ax.set_yticks(range(len(build.steps)), [s.name for s in reversed(build.steps)])
    ax.set_xlabel("seconds since the build started")
    ax.set_title(f"Build #{build.number} {build.status}" + (f" ({build.version})" if build.version else ""))
    return fig


def trend_chart(builds: list[Any]) -> Any:
    """Stacked step durations of several builds (oldest left), with each build's status."""
    fig = _figure(max(6, 0.7 * len(builds) + 2), 4)
    ax = fig.add_subplot()
    names = [n for n in _PALETTE if any(n in b.step_durations() for b in builds)]
    bottoms = [0.0] * len(builds)
    for name in names:
        values = [b.step_durations().get(name, 0.0) for b in builds]
        ax.bar(range(len(builds)), values, bottom=bottoms, label=name, color=_PALETTE[name])
        bottoms = [b + v for b, v in zip(bottoms, values)]
    ax.set_xticks(range(len(builds)), [f"#{b.number}\n{b.status.lower()}" for b in builds], fontsize=8)
    ax.set_ylabel("seconds")
    ax.set_title(f"Step durations of the last {len(builds)} builds")
    if names:
        ax.legend(fontsize=7, loc="upper left")
    return fig
