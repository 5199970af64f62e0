"""Following a build until it ends, for ``sagebuild start --wait`` and ``sagebuild demo``."""
from __future__ import annotations

import time
from typing import Any

from lambda_pipeline.model import Build
from lambda_pipeline.ports import Builds

from . import present
from .context import UI

__all__ = ["watch"]


def watch(builds: Builds, build_id: str, ui: UI, poll: float = 0.2, details: bool = True,
          environment: bool = True) -> Build:
    """Show a build's progress until it ends: a line per step (a live line on a terminal) and,
    with ``environment``, how the local training environment is being prepared."""
    seen: dict[str, str] = {}
    build = builds.get(build_id)
    env_log: list[Any] = [0, not environment]  # offset read up to, whether the environment is ready
    while True:
        if not env_log[1] and build.training_job:
            _show_environment_progress(builds, build_id, env_log, ui, final=build.done)
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


def _show_environment_progress(builds: Builds, build_id: str, state: list[Any], ui: UI, final: bool) -> None:
    """The ``sagebuild-env:`` lines at the start of the training log (the project's environment
    being made or reused), until it is ready or the build ended; ``state`` is [offset, done]."""
    try:
        chunk = builds.logs(build_id, state[0])
    except Exception:  # the log is a nicety here: the build's steps still show
        return
    text = chunk.text[: chunk.text.rfind("\n") + 1]
    for line in text.splitlines():
        if line.startswith("sagebuild-env: ") and not line.startswith("sagebuild-env: $ "):
            ui.say("  " + " " * 12 + line[len("sagebuild-env: "):])
            if line.startswith(("sagebuild-env: reusing", "sagebuild-env: environment ")):
                state[1] = True
    state[0] += len(text.encode())
    state[1] = state[1] or final
