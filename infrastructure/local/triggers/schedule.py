"""Builds on a schedule (cron, local time). Runs missed while the engine was down are reported."""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any, Callable

from croniter import croniter

__all__ = ["Scheduler"]

logger = logging.getLogger(__name__)
LATE_AFTER_SECONDS = 60  # a run noticed later than this was missed, not just ticked late


def _local(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts).astimezone()


class Scheduler:
    """Fires the config's cron schedules. ``tick(now)`` does one check; time is injected.

    The last time each schedule fired (or was first seen) is kept in the ledger; it is written only
    then, not at every tick. While the engine runs every due run fires on time, so after a restart
    the runs that fell in between were missed: they are reported (``schedule.missed``) and one
    catch-up build starts for them.
    """

    def __init__(self, schedules: Callable[[], list[dict[str, Any]]], submit: Callable[..., Any], state: Any,
                 notify: Callable[[str, dict[str, Any]], None], pipeline: Callable[[], str],
                 clock: Callable[[], float] = time.time, interval: float = 1.0) -> None:
        self._schedules, self._submit, self._state = schedules, submit, state
        self._notify, self._pipeline, self._clock, self._interval = notify, pipeline, clock, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def tick(self, now: float | None = None) -> list[dict[str, Any]]:
        """Check every schedule at ``now``; returns the triggers submitted."""
        now = self._clock() if now is None else now
        fired = []
        for entry in self._schedules():
            key = f"schedule:{entry['cron']}"
            last = self._state.get_state(key)
            if last is None:
                self._state.set_state(key, repr(now))
                continue  # first sight of this schedule: it starts counting now
            due: list[float] = []
            it = croniter(entry["cron"], _local(float(last)))
            while len(due) < 1000:
                nxt = it.get_next(float)
                if nxt > now:
                    break
                due.append(nxt)
            if not due:
                continue  # nothing to write: while the engine runs, every due run is handled as it comes
            self._state.set_state(key, repr(now))
            on_time = [t for t in due if now - t <= LATE_AFTER_SECONDS]
            missed = [t for t in due if now - t > LATE_AFTER_SECONDS]
            if missed:
                when = [_local(t).isoformat(timespec="minutes") for t in missed]
                logger.warning("scheduled runs were missed while the engine was down",
                               extra={"cron": entry["cron"], "missed": when})
                self._notify("schedule.missed", {"pipeline": self._pipeline(), "cron": entry["cron"],
                                                 "reason": entry["reason"], "missed": when})
                reason = (f"{entry['reason']}: catching up {len(missed)} run(s) missed while the engine was down "
                          f"(first {when[0]})")
            else:
                reason = f"{entry['reason']} ({_local(on_time[-1]).isoformat(timespec='minutes')})"
            details = {"cron": entry["cron"], "due": [_local(t).isoformat() for t in due],
                       "missed": [_local(t).isoformat() for t in missed]}
            self._submit("schedule", reason, details)
            fired.append({"reason": reason, **details})
        return fired

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.tick()
            except Exception:
                logger.exception("scheduler tick failed; trying again")
