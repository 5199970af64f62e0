"""Rollback on demand, shared by both Builds adapters: plan it, start it, record it.

Locally the engine waits for the blue/green swap (seconds); on AWS an endpoint update takes
minutes, longer than Alexa's 8 s, so the skill starts it and the endpoint's state-change event
records it (:func:`complete_from_event`). The endpoint config's name carries the version, so the
event needs no other state: ``<pipeline>-<version>-rollback-<ms>``.
"""
from __future__ import annotations

import logging
import re
from typing import Any

from .errors import AlreadyRunning, NothingToRollBack, NotFound
from .model import BuildStatus
from .ports import Ports

__all__ = ["normalize_version", "plan_rollback", "begin_rollback", "record_rollback", "complete_from_event",
           "ROLLBACK_CONFIG"]

logger = logging.getLogger(__name__)

ROLLBACK_CONFIG = re.compile(r"^(?P<pipeline>.+)-(?P<version>v\d+)-rollback-\d+$")
_DEPLOYING_STEPS = ("Deploy", "VerifyLive", "RollBack")


def normalize_version(version: str | int) -> str:
    """``3``, ``"3"`` and ``"v3"`` all name version ``v3``."""
    text = str(version).strip().lower()
    return text if text.startswith("v") else f"v{text}"


def plan_rollback(ports: Ports, version: str | int | None = None) -> dict[str, Any]:
    """Which version a rollback would leave and which it would restore; changes nothing.

    Raises:
        NothingToRollBack: nothing deployed, no earlier good version, or it is live already.
        NotFound: no such version.
    """
    config = ports.config.load()
    endpoint = config["deploy"]["endpoint"]
    ledger = ports.ledger
    live = ledger.live_deployment(endpoint)
    if live is None:
        raise NothingToRollBack("nothing is deployed yet, so there is nothing to roll back")
    target = normalize_version(version) if version is not None else ledger.previous_good_version(endpoint)
    if target is None:
        raise NothingToRollBack(f"{live['version']} is the only version that has served; "
                                "there is nothing earlier to go back to")
    if target == live["version"]:
        raise NothingToRollBack(f"{target} is already live")
    if ledger.get_model(target) is None:
        known = ", ".join(m["version"] for m in ledger.list_models(10)) or "none"
        raise NotFound(f"no version {target!r} in the registry (recent versions: {known})")
    return {"endpoint": endpoint, "pipeline": config["pipeline"], "from": live["version"], "to": target}


def begin_rollback(ports: Ports, version: str | int | None, now: float) -> tuple[dict[str, Any], str]:
    """Plan, then point the endpoint at the earlier version's stored artifact (no retraining).

    Returns the plan and the new endpoint config's name; the swap itself goes on in the platform.

    Raises:
        AlreadyRunning: a build is deploying right now. NothingToRollBack, NotFound: see
        :func:`plan_rollback`.
    """
    for build in ports.ledger.list_builds(5, statuses=(BuildStatus.RUNNING,)):
        if build.current_step in _DEPLOYING_STEPS:
            raise AlreadyRunning(f"build {build.number} is deploying right now; roll back when it ends")
    plan = plan_rollback(ports, version)
    model = ports.ledger.get_model(plan["to"])
    assert model is not None
    config = model["config"] or {}
    entry = (config.get("deploy") or {}).get("entry_point")
    model_name = f"{plan['pipeline']}-{plan['to']}"
    ports.hosting.create_model(model_name, model["artifact"], model["code"] if entry else None, entry,
                               image_uri=(config.get("image") or {}).get("uri"))
    config_name = f"{model_name}-rollback-{int(now * 1000)}"
    ports.hosting.create_endpoint_config(config_name, model_name)
    ports.hosting.update_endpoint(plan["endpoint"], config_name)
    return plan, config_name


def record_rollback(ports: Ports, plan: dict[str, Any], config_name: str) -> None:
    """The swap finished: record the deployment (kind ``rollback``) and tell people."""
    model = ports.ledger.get_model(plan["to"])
    ports.ledger.record_deployment(plan["endpoint"], plan["to"], config_name, model["build_id"] if model else None,
                                   kind="rollback")
    try:
        ports.notifier.publish("model.rolled_back", {"pipeline": plan["pipeline"], "endpoint": plan["endpoint"],
                                                     "from_version": plan["from"], "to_version": plan["to"],
                                                     "live": ports.ledger.live_deployment(plan["endpoint"])})
    except Exception:
        logger.exception("notification failed", extra={"event": "model.rolled_back"})


def complete_from_event(ports: Ports, endpoint: str, status: str, config_name: str | None,
                        failure: str | None = None) -> str | None:
    """An endpoint changed state (AWS: EventBridge). If a rollback's config went InService, record it.

    Returns what was done: ``"recorded"``, ``"failed"`` (notified), or None (not a rollback, or
    recorded already). Idempotent: EventBridge may deliver an event twice. ``status`` may be spelt
    as the API does (``InService``) or as SageMaker's events do (``IN_SERVICE``).
    """
    status = {"inservice": "InService", "failed": "Failed"}.get(status.replace("_", "").lower(), status)
    match = ROLLBACK_CONFIG.match(config_name or "")
    if match is None:
        return None
    live = ports.ledger.live_deployment(endpoint)
    if live is not None and live["endpoint_config"] == config_name:
        return None
    plan = {"endpoint": endpoint, "pipeline": match["pipeline"],
            "from": live["version"] if live else None, "to": match["version"]}
    if status == "InService":
        record_rollback(ports, plan, config_name or "")
        return "recorded"
    if status == "Failed" or failure:
        try:
            ports.notifier.publish("model.rollback_failed", {**plan, "reason": failure or "the endpoint update failed",
                                                              "live": live})
        except Exception:
            logger.exception("notification failed", extra={"event": "model.rollback_failed"})
        return "failed"
    return None
