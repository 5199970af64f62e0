"""Coalesce triggers into builds; never drop one (the 2018 design did)."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from lambda_pipeline.build_service import BuildService, combined_reason
from lambda_pipeline.errors import SageBuildError
from lambda_pipeline.model import Build

__all__ = ["TriggerHub", "combined_reason"]

logger = logging.getLogger(__name__)


@dataclass
class _Pending:
    triggers: list[dict[str, Any]] = field(default_factory=list)
    timer: threading.Timer | None = None


class TriggerHub:
    """Collects triggers for ``window`` seconds, then hands them to the build service as one batch
    (which starts one build for them, or queues it, or joins the queued follow-up).

    Args:
        builds: the engine's build service.
        window: seconds to wait after the first trigger for more (0: start at once).
        clock: current time (recorded on each trigger).
    """

    def __init__(self, builds: BuildService, window: Callable[[], float], clock: Callable[[], float] = time.time) -> None:
        self._builds = builds
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._pending = _Pending()

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
        """Hand the waiting triggers to the build service now."""
        with self._lock:
            triggers, self._pending = self._pending.triggers, _Pending()
        if not triggers:
            return None
        try:
            return self._builds.submit_triggers(triggers)
        except SageBuildError as exc:
            # Whatever kept them from a build, they are recorded on a FAILED build with the reason.
            logger.error("triggered build could not start", extra={"error": str(exc), "triggers": len(triggers)})
            return self._builds.record_rejected(combined_reason(triggers), triggers, exc)

    def close(self) -> None:
        with self._lock:
            if self._pending.timer is not None:
                self._pending.timer.cancel()
        self.flush()
