"""Lambda entry of the job-events function: the jobs' EventBridge events answer waiting states.

Rules on "SageMaker Training Job State Change", "SageMaker Endpoint State Change" and
"CodeBuild Build State Change" (scoped to the stack's jobs) invoke :func:`job_changed`; so does a
schedule with ``{"source": "sagebuild.sweep"}``, which heartbeats the waiting states whose job
still runs and answers those whose event was lost. Duplicate events change nothing: the wait
record is claimed with the ledger's compare-and-swap before the job is checked.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from .job_events import SWEEP_SOURCE, job_of
from .ports import Ports

__all__ = ["job_changed", "forget_cached_ports"]

logger = logging.getLogger(__name__)
_ports: list[Ports] = []


def _container_ports() -> Ports:
    if not _ports:  # cold start: this container's adapters, built once
        from .lambda_entry import ports_from_environment
        _ports.append(ports_from_environment())
    return _ports[0]


def forget_cached_ports() -> None:
    """Drop this container's adapters (tests: each simulated account is a new one)."""
    _ports.clear()


def job_changed(event: dict[str, Any], context: Any = None, ports: Ports | None = None) -> dict[str, Any]:
    """Answer the state waiting on the job this event is about (or sweep every waiting one)."""
    from .steps import answer_wait, sweep_waits
    p = ports or _container_ports()
    if event.get("source") == SWEEP_SOURCE:
        outcomes = sweep_waits(p)
        logger.info("heartbeat sweep", extra={"outcomes": outcomes})
        return {"swept": outcomes}
    job = job_of(event)
    if job is None:
        if not event.get("detail-type"):
            raise ValueError(f"not a job state-change event: {json.dumps(event)[:300]}")
        return {"ignored": "not an end a build waits for"}
    kind, name = job
    outcome = answer_wait(p, kind, name)
    logger.info("job changed", extra={"kind": kind, "job": name, "outcome": outcome})
    return {"job": name, "kind": kind, "outcome": outcome}
