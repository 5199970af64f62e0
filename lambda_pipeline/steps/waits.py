"""Waiting states: the task token of a long step, kept with its job, and the one answer it gets.

A waiting state (``lambda:invoke.waitForTaskToken``) starts its work, or finds it started, and
calls :func:`begin`: the token goes to the ledger under the build's step, with a pointer from the
job (``training`` job name, ``image`` build id, ``endpoint`` name). Whoever learns that the job
changed calls :func:`answer` with the job's kind and name: the AWS state-change Lambda
(EventBridge), the local platforms (process exit, endpoint ready or failed), the heartbeat sweep,
or the waiting state itself right after :func:`begin` (work that ended before the token was
kept). :func:`answer` claims the record with the ledger's compare-and-swap before it runs the
step's status check, so of duplicate events exactly one runs it and the others change nothing.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import SageBuildError, TransientError
from ..ports import Ports
from . import replay

__all__ = ["Wait", "WAITS", "forget", "begin", "current", "answer", "failure_cause", "waiting_steps", "sweep"]

logger = logging.getLogger(__name__)
Check = Callable[[Ports, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Wait:
    """One waiting step: the job kind it waits on, the key of its state, the status that ends it."""

    kind: str
    key: str
    done: str


# step -> what it waits on. The check of each is the step handler of the same key (handlers.CHECKS).
WAITS = {"image": Wait("image", "image", "Succeeded"), "training": Wait("training", "training", "Completed"),
         "deploy": Wait("endpoint", "deploy", "InService"), "rollback": Wait("endpoint", "rollback", "InService")}


def _record_key(build_id: str, step: str) -> str:
    return f"wait:{build_id}:{step}"


def _pointer_key(kind: str, name: str) -> str:
    return f"waiting-on:{kind}:{name}"


def current(p: Ports, build_id: str, step: str) -> dict[str, Any] | None:
    """The wait record of a build's step (None if the step never waited): ``state`` is what its
    check needs, so a state entered again after a heartbeat timeout picks up where it was."""
    raw = p.ledger.get_state(_record_key(build_id, step))
    return json.loads(raw) if raw else None


def forget(p: Ports, build_id: str, step: str) -> None:
    """Drop a build's wait record for ``step`` (a retry runs the step's work again)."""
    if p.ledger.get_state(_record_key(build_id, step)):
        p.ledger.set_state(_record_key(build_id, step), "")


def begin(p: Ports, build_id: str, step: str, name: str, state: dict[str, Any], token: str) -> None:
    """Keep ``token`` as the one waiting on job ``name`` for this build's ``step``."""
    wait = WAITS[step]
    record = {"build_id": build_id, "step": step, "kind": wait.kind, "name": name, "state": state,
              "token": token, "status": "waiting", "since": time.time()}
    earlier = current(p, build_id, step)
    if earlier is not None and earlier.get("outcome"):  # checked already, but its token had timed out
        record["outcome"] = earlier["outcome"]
    p.ledger.set_state(_pointer_key(wait.kind, name), _record_key(build_id, step))
    p.ledger.set_state(_record_key(build_id, step), json.dumps(record))


def _callbacks(p: Ports) -> Any:
    if p.callbacks is None:
        raise SageBuildError("these ports have no task callbacks: waiting states cannot be answered")
    return p.callbacks


def _error_cause(exc: BaseException) -> str:
    """The cause as a Lambda function error carries it, so the Catch's reason reads the same."""
    return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)})


def answer(p: Ports, kind: str, name: str, checks: dict[str, Check]) -> str:
    """Job ``name`` of ``kind`` changed: check it and answer the state waiting on it.

    Returns what happened: ``"none"`` (nobody waits on it), ``"duplicate"`` (another answer got
    there first), ``"running"`` (still going: a heartbeat was sent), ``"succeeded"`` or ``"failed"``.
    A transient failure of the check puts the wait back and raises, for the caller to retry.
    """
    key = p.ledger.get_state(_pointer_key(kind, name))
    raw = p.ledger.get_state(key) if key else None
    if not key or not raw:
        return "none"
    record = json.loads(raw)
    if record["status"] != "waiting":
        return "duplicate"
    claimed = json.dumps({**record, "status": "answering"})
    if not p.ledger.swap_state(key, raw, claimed):
        return "duplicate"
    wait = WAITS[record["step"]]
    build = p.ledger.get_build(record["build_id"])
    if build.done:  # stopped while waiting: wake the (already ended) execution, change nothing else
        outcome: dict[str, Any] = {"error": "BuildEnded", "cause": f"build {build.number} already ended"}
    elif record.get("outcome"):
        outcome = record["outcome"]
    else:
        try:
            result = checks[record["step"]](p, {"build_id": record["build_id"], wait.key: record["state"]})
        except SageBuildError as exc:
            if isinstance(exc, TransientError):
                p.ledger.swap_state(key, claimed, raw)
                raise
            outcome = {"error": type(exc).__name__, "cause": _error_cause(exc)}
        except Exception:
            p.ledger.swap_state(key, claimed, raw)
            raise
        else:
            if result.get("status") != wait.done:
                p.ledger.swap_state(key, claimed, raw)
                _callbacks(p).send_task_heartbeat(record["token"])
                return "running"
            outcome = {"result": result}
    return _send(p, key, record, outcome, claimed)


def _send(p: Ports, key: str, record: dict[str, Any], outcome: dict[str, Any], claimed: str) -> str:
    """Answer the token. A token nobody waits on any more (its state timed out and is being entered
    again) keeps the outcome in the record: the state's next token gets it without a second check,
    so the check's ledger writes happen once."""
    callbacks = _callbacks(p)
    if "result" in outcome:
        if record["step"] in replay.STEP_OF_WAIT:  # kept first: a later attempt of the build replays it
            replay.keep(p, record["build_id"], replay.STEP_OF_WAIT[record["step"]], outcome["result"])
        delivered = callbacks.send_task_success(record["token"], outcome["result"])
    else:
        # The cause first (moto 5.2.5's SendTaskFailure drops it): RecordFailure may read it the
        # moment the failure is delivered, before this function writes anything after sending.
        with_cause = json.dumps({**record, "status": "answering", "failure": outcome})
        if not p.ledger.swap_state(key, claimed, with_cause):
            return "duplicate"  # the wait was forgotten meanwhile (a retry or a resume runs the step again)
        claimed = with_cause
        delivered = callbacks.send_task_failure(record["token"], outcome["error"], outcome["cause"])
    # Compare-and-swap from what this answer wrote: a wait a retry or a resume forgot meanwhile
    # stays forgotten (an unconditional write would bring the old job back to the new execution).
    if delivered:  # a failure's cause stays here too
        failure = None if "result" in outcome else outcome
        p.ledger.swap_state(key, claimed, json.dumps({**record, "status": "answered", "outcome": None,
                                                      "failure": failure}))
    else:
        p.ledger.swap_state(key, claimed, json.dumps({**record, "status": "waiting", "outcome": outcome}))
    return "succeeded" if "result" in outcome else "failed"


def failure_cause(p: Ports, build_id: str, error: str) -> str | None:
    """The cause a waiting step of this build was failed with, if it failed with ``error``."""
    for step in WAITS:
        record = current(p, build_id, step)
        failure = (record or {}).get("failure")
        if failure and failure["error"] == error:
            return str(failure["cause"])
    return None


def waiting_steps(p: Ports) -> list[dict[str, Any]]:
    """The wait records of running builds that still wait (what the heartbeat sweep visits)."""
    found = []
    for build in p.ledger.list_builds(limit=20, statuses=("RUNNING",)):
        for step in WAITS:
            record = current(p, build.id, step)
            if record is not None and record["status"] == "waiting":
                found.append(record)
    return found


def sweep(p: Ports, checks: dict[str, Check]) -> dict[str, str]:
    """Check every waiting job once: a running one gets a heartbeat (its state does not time out),
    an ended one whose event was lost gets its answer now. ``{"kind:name": outcome}``."""
    outcomes = {}
    for record in waiting_steps(p):
        try:
            outcomes[f"{record['kind']}:{record['name']}"] = answer(p, record["kind"], record["name"], checks)
        except Exception:  # one job's trouble must not keep the others waiting
            logger.exception("heartbeat sweep failed", extra={"job": record["name"]})
            outcomes[f"{record['kind']}:{record['name']}"] = "error"
    return outcomes
