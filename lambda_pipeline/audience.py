"""Who hears about builds on Alexa, and what each of them last heard.

Kept in the ledger's small key/value state (``get_state``/``set_state``: SQLite locally, DynamoDB
on AWS) so the skill (which records opt-ins and what it told whom) and the notifier (which skips
people who opted out) share it without a new table. Keys:

* ``alexa.subscription.<user id>``: ``{"subscribed", "enabled", "events", "source", "at"}`` from the skill's
  ProactiveSubscriptionChanged / SkillEnabled / SkillDisabled events and the permission consent;
* ``alexa.heard.<pipeline>.<user id>``: ``{"at", "builds"}``: when the user was last told what
  ended (the launch summary), and which builds they asked about since.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

__all__ = ["StateStore", "Audience", "Heard", "MemoryState"]

logger = logging.getLogger(__name__)

_MAX_HEARD = 50  # build numbers remembered per user beyond the timestamp


class StateStore(Protocol):
    """A small durable key/value store (the Ledger port has these two methods)."""

    def get_state(self, key: str) -> str | None: ...
    def set_state(self, key: str, value: str) -> None: ...


class MemoryState:
    """A StateStore in a dict (tests, and a skill that has nowhere durable to write)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get_state(self, key: str) -> str | None:
        return self.values.get(key)

    def set_state(self, key: str, value: str) -> None:
        self.values[key] = value


@dataclass(frozen=True)
class Heard:
    """What a user already knows about a pipeline: builds that ended before ``at``, and ``builds``."""

    at: float | None
    builds: frozenset[int] = field(default_factory=frozenset)

    def knows(self, number: int, ended_at: float | None) -> bool:
        return number in self.builds or (self.at is not None and (ended_at or 0) <= self.at)


class Audience:
    """Opt-ins and "last heard" per Alexa user, over a :class:`StateStore`.

    Args:
        store: the ledger (or anything with get_state/set_state).
        clock: seconds since the epoch, injectable.
    """

    def __init__(self, store: StateStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    # -- subscriptions ---------------------------------------------------------------------
    def record_subscription(self, user_id: str, subscribed: bool, source: str,
                            events: Iterable[str] = ()) -> None:
        """Remember that ``user_id`` opted in (or out) of notifications, and what told us (``source``)."""
        self._update(user_id, subscribed=subscribed, events=sorted(events), source=source)

    def record_enabled(self, user_id: str, enabled: bool) -> None:
        """The user enabled (or disabled) the skill; a disabled skill gets no notifications."""
        self._update(user_id, enabled=enabled, source="SkillEnabled" if enabled else "SkillDisabled")

    def _update(self, user_id: str, **fields: Any) -> None:
        doc = self.subscription(user_id) or {}
        doc.update(fields, at=self._clock())
        self._store.set_state(f"alexa.subscription.{user_id}", json.dumps(doc))
        logger.info("alexa audience recorded", extra={k: v for k, v in fields.items() if k != "events"})

    def subscription(self, user_id: str) -> dict[str, Any] | None:
        return _load(self._store.get_state(f"alexa.subscription.{user_id}"))

    def opted_out(self, user_id: str) -> bool:
        """True only if the user said no (unsubscribed, disabled the skill); unknown users are not."""
        doc = self.subscription(user_id) or {}
        return doc.get("subscribed") is False or doc.get("enabled") is False

    def subscribed(self, user_id: str) -> bool:
        doc = self.subscription(user_id) or {}
        return doc.get("subscribed") is True and doc.get("enabled") is not False

    # -- what each user heard --------------------------------------------------------------
    def heard(self, pipeline: str, user_id: str) -> Heard:
        doc = _load(self._store.get_state(f"alexa.heard.{pipeline}.{user_id}")) or {}
        return Heard(doc.get("at"), frozenset(int(n) for n in doc.get("builds") or []))

    def mark_all_heard(self, pipeline: str, user_id: str) -> None:
        """The user was just told everything that ended until now."""
        self._write(pipeline, user_id, Heard(self._clock()))

    def mark_heard(self, pipeline: str, user_id: str, numbers: Iterable[int]) -> None:
        """The user asked about these builds (and heard how they stand)."""
        before = self.heard(pipeline, user_id)
        numbers = set(int(n) for n in numbers)
        if numbers <= before.builds:
            return
        latest = sorted(before.builds | numbers, reverse=True)[:_MAX_HEARD]
        self._write(pipeline, user_id, Heard(before.at, frozenset(latest)))

    def _write(self, pipeline: str, user_id: str, heard: Heard) -> None:
        self._store.set_state(f"alexa.heard.{pipeline}.{user_id}",
                              json.dumps({"at": heard.at, "builds": sorted(heard.builds)}))


def _load(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
