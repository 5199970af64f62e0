"""What the notebook client returns: small records with a readable repr and an HTML view."""
from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from lambda_pipeline.model import Build, StepRecord

from .present import ago, seconds

__all__ = ["BuildResult", "BuildList", "Deployment", "ConfigDiff"]

_COLOURS = {"SUCCEEDED": "#1a7f37", "FAILED": "#cf222e", "GATE_FAILED": "#bf8700", "ABORTED": "#6e7781",
            "INTERRUPTED": "#6e7781", "RUNNING": "#0969da", "QUEUED": "#8250df"}


def _badge(status: str) -> str:
    colour = _COLOURS.get(status, "#6e7781")
    return (f'<span style="background:{colour};color:white;border-radius:3px;padding:1px 6px;'
            f'font-size:90%">{html.escape(status)}</span>')


@dataclass(frozen=True)
class BuildResult:
    """One build: status, version, metrics, where it failed and why, its steps."""

    number: int
    id: str
    status: str
    pipeline: str
    version: str | None
    reason: str
    trigger_source: str
    current_step: str | None
    failed_step: str | None
    failure_reason: str | None
    metrics: dict[str, float]
    hyperparameters: dict[str, Any]
    created_at: float
    started_at: float | None
    ended_at: float | None
    endpoint_config: str | None
    steps: tuple[StepRecord, ...] = field(default_factory=tuple)
    config: dict[str, Any] | None = None
    attempt: int = 1

    @classmethod
    def of(cls, build: Build) -> "BuildResult":
        return cls(number=build.number, id=build.id, status=build.status, pipeline=build.pipeline,
                   version=build.version, reason=build.reason, trigger_source=build.trigger_source,
                   current_step=build.current_step, failed_step=build.failed_step,
                   failure_reason=build.failure_reason, metrics=dict(build.metrics),
                   hyperparameters=dict(build.hyperparameters), created_at=build.created_at,
                   started_at=build.started_at, ended_at=build.ended_at, endpoint_config=build.endpoint_config,
                   steps=tuple(build.steps), config=build.config, attempt=build.attempt)

    @property
    def done(self) -> bool:
        return self.status not in ("QUEUED", "RUNNING")

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.ended_at or time.time()) - self.started_at

    def step_durations(self) -> dict[str, float]:
        return {s.name: (s.ended_at or time.time()) - s.started_at for s in self.steps}

    def __repr__(self) -> str:
        what = [f"Build #{self.number} {self.status}" + (f" (attempt {self.attempt})" if self.attempt > 1 else "")]
        if self.version:
            what.append(self.version)
        if self.status == "RUNNING" and self.current_step:
            what.append(f"at {self.current_step}")
        what += [f"{k}={v:.4g}" for k, v in sorted(self.metrics.items())]
        if self.duration is not None:
            what.append(f"({seconds(self.duration)})")
        if self.failure_reason:
            what.append(f"- {self.failed_step}: {self.failure_reason}")
        return f"<{' '.join(what)}; sb.status({self.number})>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(s.name)}</td><td>{_badge(s.status)}</td>"
            f"<td style='text-align:right'>{seconds((s.ended_at or time.time()) - s.started_at)}</td></tr>"
            for s in self.steps)
        metrics = ", ".join(f"{html.escape(k)} = {v:.4g}" for k, v in sorted(self.metrics.items())) or "-"
        failure = (f"<p><b>Failed at {html.escape(self.failed_step or '-')}:</b> "
                   f"{html.escape(self.failure_reason)}</p>" if self.failure_reason else "")
        return (f"<div><b>Build #{self.number}</b> {_badge(self.status)} {html.escape(self.version or '')} "
                f"<small>{html.escape(self.trigger_source)}: {html.escape(self.reason)}, "
                f"{ago(self.created_at)}</small>{failure}<p>Metrics: {metrics}</p>"
                f"<table><tr><th>step</th><th>status</th><th>took</th></tr>{rows}</table></div>")


class BuildList:
    """Builds, newest first. ``builds[3]`` is build number 3 (KeyError if it is not in the list)."""

    def __init__(self, builds: list[BuildResult]) -> None:
        self._builds = builds
        self._by_number = {b.number: b for b in builds}

    def __iter__(self) -> Iterator[BuildResult]:
        return iter(self._builds)

    def __len__(self) -> int:
        return len(self._builds)

    def __getitem__(self, number: int) -> BuildResult:
        if number not in self._by_number:
            have = ", ".join(str(n) for n in self._by_number) or "none"
            raise KeyError(f"build {number} is not in this list (builds: {have})")
        return self._by_number[number]

    def _ipython_key_completions_(self) -> list[int]:
        return list(self._by_number)

    def __repr__(self) -> str:
        return "\n".join(repr(b) for b in self._builds) or "<no builds>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>#{b.number}</td><td>{_badge(b.status)}</td><td>{html.escape(b.version or '-')}</td>"
            f"<td>{html.escape(', '.join(f'{k}={v:.4g}' for k, v in sorted(b.metrics.items())) or '-')}</td>"
            f"<td>{seconds(b.duration)}</td><td>{html.escape(b.reason)}</td></tr>" for b in self._builds)
        return ("<table><tr><th>build</th><th>status</th><th>version</th><th>metrics</th><th>took</th>"
                f"<th>reason</th></tr>{rows}</table>")


@dataclass(frozen=True)
class Deployment:
    """What an endpoint serves now, since when, and from which build."""

    endpoint: str
    status: str
    version: str | None
    since: float | None
    url: str | None
    build_number: int | None
    metrics: dict[str, float]

    def __repr__(self) -> str:
        if self.version is None:
            return f"<{self.endpoint}: {self.status}, nothing live>"
        metrics = " ".join(f"{k}={v:.4g}" for k, v in sorted(self.metrics.items()))
        return (f"<{self.endpoint} serves {self.version} (build #{self.build_number}) since {ago(self.since)}"
                f" at {self.url} {metrics}>")

    def _repr_html_(self) -> str:
        return (f"<div><b>{html.escape(self.endpoint)}</b> {_badge(self.status)} serves "
                f"<b>{html.escape(self.version or 'nothing')}</b> (build #{self.build_number}) since "
                f"{ago(self.since)} at <code>{html.escape(self.url or '-')}</code></div>")


@dataclass(frozen=True)
class ConfigDiff:
    """Keys that differ between two configs: path -> (before, after)."""

    changes: dict[str, tuple[Any, Any]]

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __repr__(self) -> str:
        if not self.changes:
            return "<no differences>"
        return "\n".join(f"{path}: {before!r} -> {after!r}" for path, (before, after) in sorted(self.changes.items()))

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td><code>{html.escape(p)}</code></td><td>{html.escape(repr(b))}</td>"
                       f"<td>{html.escape(repr(a))}</td></tr>" for p, (b, a) in sorted(self.changes.items()))
        return f"<table><tr><th>key</th><th>before</th><th>after</th></tr>{rows}</table>" if rows else "no differences"
