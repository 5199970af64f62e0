"""Which job an EventBridge state-change event is about, and whether a build could wait for it.

SageMaker and CodeBuild send events on every state change, sometimes several for one change;
only the ends a waiting state waits for matter (the rest are ignored, and the heartbeat sweep
keeps a long job's state from timing out). Statuses are compared without case or underscores:
SageMaker's events spell them ``Completed`` (training) and ``IN_SERVICE`` (endpoints) where its
API says ``InService``.
"""
from __future__ import annotations

from typing import Any

__all__ = ["job_of", "SWEEP_SOURCE"]

# The scheduled rule's constant input: check every waiting job once (heartbeat or lost-event answer).
SWEEP_SOURCE = "sagebuild.sweep"

_ENDS = {
    "SageMaker Training Job State Change": ("training", "TrainingJobName", "TrainingJobStatus",
                                            {"completed", "failed", "stopped"}),
    "SageMaker Endpoint State Change": ("endpoint", "EndpointName", "EndpointStatus",
                                        {"inservice", "failed", "outofservice", "deleted"}),
    "CodeBuild Build State Change": ("image", "build-id", "build-status",
                                     {"succeeded", "failed", "fault", "stopped", "timedout"}),
}


def _plain(status: Any) -> str:
    return str(status or "").replace("_", "").replace("-", "").lower()


def job_of(event: dict[str, Any]) -> tuple[str, str] | None:
    """``(kind, name)`` of the job an event ended, or None for events no wait needs.

    >>> job_of({"detail-type": "SageMaker Training Job State Change",
    ...         "detail": {"TrainingJobName": "wine-v3-abc123", "TrainingJobStatus": "Completed"}})
    ('training', 'wine-v3-abc123')
    >>> job_of({"detail-type": "SageMaker Endpoint State Change",
    ...         "detail": {"EndpointName": "wine", "EndpointStatus": "UPDATING"}}) is None
    True
    """
    found = _ENDS.get(str(event.get("detail-type") or ""))
    if found is None:
        return None
    kind, name_key, status_key, ends = found
    detail = event.get("detail") or {}
    name = str(detail.get(name_key) or "")
    if not name or _plain(detail.get(status_key)) not in ends:
        return None
    if kind == "image":  # the event names the build by ARN; the image builder knows it by id
        name = name.split(":build/", 1)[-1]
    return kind, name
