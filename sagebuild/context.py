"""The one factory every command gets: the project, the UI and the Builds port for that project.

The root command builds one :class:`Context` (project folder, ``--stack``/``--region``, ``--debug``)
and passes it to the command; tests swap the UI's streams and the Context's Builds. Commands never
build adapters themselves.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from lambda_pipeline.adapters.local.http_builds import HttpBuilds
from lambda_pipeline.adapters.local.ledger_builds import LedgerBuilds
from lambda_pipeline.errors import EngineNotRunning, NotFound
from lambda_pipeline.ports import Builds

__all__ = ["UI", "Context", "engine_url"]


class UI:
    """Where the CLI writes; tests swap the streams."""

    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
        self.out, self.err = out, err

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    @property
    def interactive(self) -> bool:
        return hasattr(self.out, "isatty") and self.out.isatty()

    def confirm(self, question: str) -> bool:
        """Ask on a terminal; without one (scripts, CI) the answer is no: pass --yes there."""
        if not (self.interactive and sys.stdin.isatty()):
            self.warn(f"{question} Not on a terminal, so not confirmed: pass --yes.")
            return False
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


class Context:
    """What every command gets: the project, the UI, and the Builds port for that project."""

    def __init__(self, project: Path, ui: UI, debug: bool = False, stack: str | None = None,
                 region: str | None = None) -> None:
        self.project, self.ui, self.debug = project, ui, debug
        self.stack, self.region = stack, region
        self._stack_builds: Builds | None = None

    def builds(self, need_engine: bool = False) -> Builds:
        """The Builds port: the deployed stack's with --stack, else the running engine's, else the
        ledger's (reads only; ``need_engine`` refuses that and says how to start the engine)."""
        if self.stack:
            if self._stack_builds is None:
                from infrastructure.aws.stacks import aws_errors
                from lambda_pipeline.adapters.aws.stack import open_stack
                with aws_errors():
                    self._stack_builds = open_stack(self.stack, self.region)[0]
            return self._stack_builds
        running = self.running()
        if running is not None:
            return running
        if need_engine:
            raise EngineNotRunning(f"the engine is not running for {self.project}: "
                                   "start it with `sagebuild up` (in another terminal)")
        ledger = self.project / ".sagebuild" / "ledger.db"
        if not ledger.exists():
            raise NotFound(f"no builds in {self.project} yet: run `sagebuild up`, then `sagebuild start`")
        return LedgerBuilds(str(ledger), str(self.project / ".sagebuild" / "jobs"))

    def running(self) -> HttpBuilds | None:
        """The engine running for this project (its API), or None if none is alive."""
        return HttpBuilds.of_project(self.project)


def engine_url(project: Path) -> str | None:
    """The API URL of the engine running for ``project``, or None if none is alive."""
    builds = HttpBuilds.of_project(project)
    return builds.url if builds is not None else None
