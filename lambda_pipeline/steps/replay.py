"""Finished steps are kept: a retried or resumed build continues where it stopped.

Each step that finishes leaves its output in the ledger (``output:<build>:<step>``; a waiting
step's output is the answer its job's end gave). A new execution of the same definition for the
same build, which a retry or a resume starts, runs from ``Initialize`` as every execution does,
but a step whose output is kept returns it at once instead of working again: the config snapshot,
the version, the trained model, the gate's verdict and the registration stay those of the first
attempt, as Step Functions' redrive keeps the results of the states that succeeded. Work starts
again only from the step that failed (or was stopped, or was cut off by a crash).

Which step a retry re-enters: the one that failed, except that a failed check of a deployment
(VerifyLive, or the rollback after it) re-enters Deploy, since the rollback put the earlier model
back.
"""
from __future__ import annotations

import json
from typing import Any

from ..model import Build
from ..ports import Ports

__all__ = ["STEP_OF_TASK", "ORDER", "keep", "kept", "entry_step", "forget_from", "steps_from"]

# Task handler -> the logical step whose output is kept. Recovery and the last steps are not:
# they run again whenever they are reached (they only record and notify).
STEP_OF_TASK = {"initialize": "Initialize", "start_image_build": "BuildImage", "start_training": "Train",
                "evaluate": "Evaluate", "register": "Register", "deploy": "Deploy", "verify_live": "VerifyLive"}
ORDER = ("Initialize", "BuildImage", "Train", "Evaluate", "Register", "Deploy", "VerifyLive", "Notify")
# A waiting step (waits.WAITS key) -> its logical step.
STEP_OF_WAIT = {"image": "BuildImage", "training": "Train", "deploy": "Deploy"}
_REENTER = {"VerifyLive": "Deploy", "RollBack": "Deploy"}
# Logical step -> the wait records (waits.WAITS keys) that belong to it.
_WAITS_OF_STEP = {"BuildImage": ("image",), "Train": ("training",), "Deploy": ("deploy", "rollback")}


def _key(build_id: str, step: str) -> str:
    return f"output:{build_id}:{step}"


def keep(p: Ports, build_id: str, step: str, output: dict[str, Any]) -> None:
    """Keep a finished step's output for later attempts of the same build."""
    p.ledger.set_state(_key(build_id, step), json.dumps(output))


def kept(p: Ports, build_id: str, step: str) -> dict[str, Any] | None:
    """The output an earlier attempt of this build left for ``step``, if it finished."""
    raw = p.ledger.get_state(_key(build_id, step))
    return json.loads(raw) if raw else None


def entry_step(build: Build) -> str:
    """Where a retry of this build starts working again."""
    failed = build.failed_step or build.current_step or "Initialize"
    return _REENTER.get(failed, failed if failed in ORDER else "Initialize")


def steps_from(step: str) -> list[str]:
    """``step`` and every step after it (and the recovery step), whose records a retry drops."""
    return [*ORDER[ORDER.index(step):], "RollBack"]


def forget_from(p: Ports, build_id: str, step: str) -> list[str]:
    """Forget the outputs of ``step`` and later steps: they run again. Returns the waiting steps
    (``waits.WAITS`` keys) among them, whose wait records must go too."""
    for later in steps_from(step):
        if kept(p, build_id, later) is not None:
            p.ledger.set_state(_key(build_id, later), "")
    return [wait for later in steps_from(step) for wait in _WAITS_OF_STEP.get(later, ())]
