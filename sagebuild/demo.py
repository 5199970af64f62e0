"""``sagebuild demo``: one real build of the sample, a call to the live endpoint, a timeline."""
from __future__ import annotations

import time
from pathlib import Path

from lambda_pipeline.adapters.local.config_store import CONFIG_FILE
from lambda_pipeline.model import BuildStatus

from . import present
from .context import UI
from .invocation import invoke_endpoint
from .project import copy_example
from .watch import watch

__all__ = ["run_demo"]


def run_demo(directory: Path, ui: UI, example: str = "wine") -> int:
    """Run the demo in ``directory`` (created from the example if needed). Returns the exit code."""
    from infrastructure.local.service import LocalService

    started = time.monotonic()
    if not (directory / CONFIG_FILE).exists():
        copy_example(example, directory)
        ui.say(f"Created the {example} sample project in {directory}")
    ui.say(f"SageBuild demo: a local build of {directory.name} (train, gate, register, deploy, verify)")
    with LocalService(str(directory)) as service:
        build = service.builds.start("demo: build the sample model", source="demo")
        ui.say(f"Build #{build.number} started")
        final = watch(service.builds, build.id, ui, details=False)
        if final.status != BuildStatus.SUCCEEDED:
            ui.warn(f"Build #{final.number} ended {final.status} at {final.failed_step}: {final.failure_reason}")
            return 1
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in final.metrics.items())
        ui.say(f"Build #{final.number} SUCCEEDED: version {final.version}, {metrics}")
        endpoint = next(e for e in service.builds.endpoints() if e.name == final.endpoint_name)
        payload = (final.config or {}).get("deploy", {}).get("sample_payload")
        if payload:
            answer = invoke_endpoint(service.builds, endpoint.name, payload.encode(), "text/csv")
            ui.say(f"Called {endpoint.name} at {endpoint.url}/invocations with a sample row:")
            ui.say(f"  {payload}")
            ui.say(f"  -> {answer.decode().strip()}")
        ui.say("Timeline of the build:")
        ui.say(present.timeline(final.steps, indent="  "))
    ui.say(f"Demo done in {time.monotonic() - started:.1f}s. The project stays in {directory}: "
           f"`cd {directory} && sagebuild up` serves the model again, `sagebuild list` shows its builds.")
    return 0
