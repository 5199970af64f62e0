"""Records shared by the ports: builds, steps, endpoints. Plain, JSON-safe dataclasses."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Build", "StepRecord", "EndpointInfo", "PipelineInfo", "LogChunk", "BuildStatus", "STEPS", "TERMINAL"]


class BuildStatus:
    """Build statuses as stored in the ledger."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    GATE_FAILED = "GATE_FAILED"
    ABORTED = "ABORTED"
    INTERRUPTED = "INTERRUPTED"


TERMINAL = frozenset({BuildStatus.SUCCEEDED, BuildStatus.FAILED, BuildStatus.GATE_FAILED,
                      BuildStatus.ABORTED, BuildStatus.INTERRUPTED})

# Logical steps of a build, in order. A Task state belongs to exactly one of them.
STEPS = ("Initialize", "BuildImage", "Train", "Evaluate", "Register", "Deploy", "VerifyLive", "Notify")


@dataclass
class StepRecord:
    """When one logical step of a build ran and how it ended."""

    name: str
    status: str
    started_at: float
    ended_at: float | None = None
    detail: str | None = None

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


@dataclass
class Build:
    """One build as the ledger knows it."""

    id: str
    number: int
    pipeline: str
    status: str
    trigger_source: str
    reason: str
    created_at: float
    version: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    current_step: str | None = None
    failed_step: str | None = None
    failure_reason: str | None = None
    error_type: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    training_job: str | None = None
    image_build: str | None = None  # the image build's id (CodeBuild), so a stop during BuildImage stops it
    model_artifact: str | None = None
    endpoint_name: str | None = None
    endpoint_config: str | None = None
    execution_arn: str | None = None
    attempt: int = 1  # 2 after the first retry: the build keeps its number, its attempts are counted
    steps: list[StepRecord] = field(default_factory=list)
    triggers: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)  # its retries and resumes: kind, at, from, attempt

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.ended_at or _now()) - self.started_at

    def to_dict(self, with_config: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not with_config:
            data.pop("config")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Build":
        data = dict(data)
        data["steps"] = [StepRecord(**s) for s in data.get("steps", [])]
        data.setdefault("config", None)
        return cls(**data)


@dataclass(frozen=True)
class PipelineInfo:
    """One pipeline a front end can address by name: where it runs and who may steer it.

    ``allowed_user_ids`` may start, stop and roll back (its config's ``skill.allowed_user_ids``,
    or the stack's ``AllowedAlexaUserIds``); others may ask only if ``others_can_query``.
    """

    name: str
    allowed_user_ids: frozenset[str] = frozenset()
    others_can_query: bool = True
    folder: str | None = None
    url: str | None = None

    def may_act(self, user_id: str | None) -> bool:
        return bool(user_id) and user_id in self.allowed_user_ids

    def may_query(self, user_id: str | None) -> bool:
        return self.others_can_query or self.may_act(user_id)


@dataclass
class EndpointInfo:
    """What an endpoint serves now."""

    name: str
    status: str
    endpoint_config: str | None
    model_version: str | None
    url: str | None
    updated_at: float | None
    failure_reason: str | None = None
    build_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LogChunk:
    """A slice of a training log; ``next_offset`` continues it, ``complete`` once the job ended."""

    text: str
    next_offset: int
    complete: bool


def _now() -> float:
    import time
    return time.time()
