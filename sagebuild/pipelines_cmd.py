"""``sagebuild pipelines`` and ``sagebuild --pipeline NAME``: every pipeline running for this user
(the registry ``sagebuild up`` writes), from any folder."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lambda_pipeline.errors import SageBuildError

from . import present
from .context import Context

__all__ = ["add_pipelines_command", "cmd_pipelines", "project_of", "pipeline_rows"]


def project_of(name: str) -> Path:
    """The folder of the running pipeline ``name`` (``UnknownPipeline`` lists those that run)."""
    from lambda_pipeline.adapters.local.registry_pipelines import RegistryPipelines
    folder = RegistryPipelines().info(name).folder
    return Path(folder or ".")


def pipeline_rows(timeout: float = 3.0) -> list[dict[str, Any]]:
    """One row per running pipeline: name, folder, API address, latest build and what is live
    (never its token)."""
    from lambda_pipeline.adapters.local.registry_pipelines import RegistryPipelines
    directory = RegistryPipelines(timeout=timeout)
    rows = []
    for name in directory.names():
        row: dict[str, Any] = {"name": name, "folder": None, "url": None, "latest_build": None, "live": []}
        try:
            info = directory.info(name)
            row.update(folder=info.folder, url=info.url)
            builds = directory.builds(name)
            latest = builds.list(1)
            if latest:
                b = latest[0]
                row["latest_build"] = {"number": b.number, "status": b.status, "version": b.version,
                                       "created_at": b.created_at, "ended_at": b.ended_at}
            row["live"] = [{"endpoint": e.name, "version": e.model_version, "status": e.status, "url": e.url}
                           for e in builds.endpoints() if e.model_version and e.status != "OutOfService"]
        except SageBuildError as exc:  # one engine that does not answer must not hide the others
            row["error"] = str(exc)
        rows.append(row)
    return rows


def cmd_pipelines(ctx: Context, args: argparse.Namespace) -> int:
    rows = pipeline_rows()
    if args.json:
        ctx.ui.say(json.dumps(rows, indent=2))
        return 0
    if not rows:
        ctx.ui.say("No pipeline is running for you: start one with `sagebuild up` in its folder.")
    for row in rows:
        build = row["latest_build"]
        latest = (f"build {build['number']} {build['status'].lower()} {present.ago(build['ended_at'] or build['created_at'])}"
                  if build else "no builds yet")
        live = ", ".join(f"{e['endpoint']} {e['version']}" for e in row["live"]) or "nothing live"
        ctx.ui.say(f"{row['name']:<20} {row['url'] or '-':<24} {latest:<36} {live}")
        ctx.ui.say(f"{'':<20} {row['folder'] or '-'}" + (f"  ({row['error']})" if row.get("error") else ""))
    return 0


def add_pipelines_command(sub: Any) -> None:
    p = sub.add_parser("pipelines", help="every pipeline running for you (from any folder): latest build, what is live")
    p.add_argument("--json", action="store_true", help="one JSON list: name, folder, url, latest_build, live")
    p.set_defaults(func=cmd_pipelines)
