"""The local platforms' state-change events: what EventBridge is to SageMaker on AWS.

A platform emits ``(kind, name)`` when a job reaches a state a build may wait for (a training
job ended, an endpoint became InService or Failed, or was deleted). The engine listens and
answers the waiting state (``steps.answer_wait``). Listeners run in their own thread, so a
platform's process-exit or roll-out thread never waits on the engine.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from ...errors import TransientError

__all__ = ["JobEvents"]

logger = logging.getLogger(__name__)
Listener = Callable[[str, str], object]


class JobEvents:
    """Fan-out of one platform's job changes to the listeners (the engine's waits)."""

    def __init__(self, attempts: int = 5) -> None:
        self._listeners: list[Listener] = []
        self._attempts = attempts
        self.dropped = 0  # events deliberately not delivered (tests of the lost-event path)
        self.drop: Callable[[str, str], bool] = lambda kind, name: False

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def emit(self, kind: str, name: str) -> None:
        if self.drop(kind, name):
            self.dropped += 1
            return
        for listener in list(self._listeners):
            threading.Thread(target=self._deliver, args=(listener, kind, name), name=f"job-event-{name}",
                             daemon=True).start()

    def _deliver(self, listener: Listener, kind: str, name: str) -> None:
        for attempt in range(self._attempts):
            try:
                listener(kind, name)
                return
            except TransientError:  # a busy ledger: the next try usually gets it
                time.sleep(0.05 * (attempt + 1))
            except Exception:  # the heartbeat timeout of the waiting state still checks the job
                logger.exception("job event listener failed", extra={"kind": kind, "job": name})
                return
        logger.warning("job event not delivered after retries", extra={"kind": kind, "job": name})
