"""Following a build until it ends, for ``sagebuild start --wait`` and ``sagebuild demo``."""
from __future__ import annotations

import time

from lambda_pipeline.model import Build
from lambda_pipeline.ports import Builds

from . import present
from .context import UI

__all__ = ["watch"]


def watch(builds: Builds, build_id: str, ui: UI, poll: float = 0.2, details: bool = True) -> Build:
    """Show a build's progress until it ends: a line per step (a live line on a terminal)."""
    seen: dict[str, str] = {}
    build = builds.get(build_id)
    while True:
        for step in build.steps:
            state = "done" if step.ended_at else "running"
            if seen.get(step.name) != state:
                seen[step.name] = state
                if ui.interactive and state == "running":
                    continue
                ui.say(f"  {step.name:<11} {'started' if state == 'running' else 'finished in ' + present.seconds(step.duration)}"
                       + (f"  ({step.detail})" if step.detail and state == 'done' else ""))
        if build.done:
            break
        if ui.interactive:
            current = build.current_step or build.status.lower()
            ui.out.write(f"\r  … {current} ({present.seconds(build.duration or 0)})   \r")
            ui.out.flush()
        time.sleep(poll)
        build = builds.get(build_id)
    if ui.interactive:
        ui.out.write("\r" + " " * 60 + "\r")
    if details:
        ui.say(present.build_details(build))
    return build
