"""Coalesce triggers into builds; never drop one (the 2018 design did)."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from lambda_pipeline.errors import ConfigError, SageBuildError
from lambda_pipeline.model import Build, BuildStatus

__all__ = ["TriggerHub", "combined_reason"]

logger = logging.getLogger(__name__)
_REASON_CHARS = 500


def combined_reason(triggers: list[dict[str, Any]]) -> str:
    """One reason for many triggers: the first few, and how many more."""
    if len(triggers) == 1:
        return triggers[0]["reason"][:_REASON_CHARS]
    shown = "; ".join(f"{t['source']}: {t['reason']}" for t in triggers[:3])
    more = f"; and {len(triggers) - 3} more" if len(triggers) > 3 else ""
    return f"{len(triggers)} triggers: {shown}{more}"[:_REASON_CHARS]


@dataclass
class _Pending:
    triggers: list[dict[str, Any]] = field(default_factory=list)
    timer: threading.Timer | None = None


class TriggerHub:
    """Collects triggers for ``window`` seconds, then starts (or queues) one build for them all.

    Args:
        builds: the engine's Builds (EngineBuilds).
        window: seconds to wait after the first trigger for more (0: start at once).
        clock: current time (recorded on each trigger).
    """

    def __init__(self, builds: Any, window: Callable[[], float], clock: Callable[[], float] = time.time) -> None:
        self._builds = builds
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._pending = _Pending()
        self.rejected: list[str] = []

    def submit(self, source: str, reason: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
        """Accept a trigger. The build starts when the coalescing window closes."""
        trigger = {"source": source, "reason": reason.strip() or f"{source} trigger", "details": details or {},
                   "received_at": self._clock()}
        with self._lock:
            self._pending.triggers.append(trigger)
            waiting = len(self._pending.triggers)
            if self._pending.timer is None:
                window = max(0.0, float(self._window()))
                self._pending.timer = threading.Timer(window, self.flush)
                self._pending.timer.daemon = True
                self._pending.timer.start()
        logger.info("trigger accepted", extra={"source": source, "reason": reason})
        return {"accepted": True, "waiting": waiting}

    def flush(self) -> Build | None:
        """Start a build for the waiting triggers, or add them to the follow-up already queued."""
        with self._lock:
            triggers, self._pending = self._pending.triggers, _Pending()
        if not triggers:
            return None
        try:
            queued = self._builds.list(20)
            follow_up = next((b for b in queued if b.status == BuildStatus.QUEUED), None)
            if follow_up is not None:
                everything = follow_up.triggers + triggers
                return self._builds.attach_triggers(follow_up.id, triggers, combined_reason(everything))
            source = triggers[0]["source"] if len({t["source"] for t in triggers}) == 1 else "triggers"
            return self._builds.start(combined_reason(triggers), source=source, triggers=triggers, always_queue=True)
        except (ConfigError, SageBuildError) as exc:
            # The build cannot start (a broken config): it is recorded as failed with every
            # trigger and the reason, and people are told, so nothing is lost.
            logger.error("triggered build could not start", extra={"error": str(exc), "triggers": len(triggers)})
            self.rejected.append(str(exc))
            return self._builds.record_rejected(combined_reason(triggers), triggers, exc)

    def close(self) -> None:
        with self._lock:
            if self._pending.timer is not None:
                self._pending.timer.cancel()
        self.flush()
