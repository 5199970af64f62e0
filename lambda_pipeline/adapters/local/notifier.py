"""Notifications to the console (the engine's log). More sinks come with the triggers issue."""
from __future__ import annotations

import json
import logging
from typing import Any, Callable

__all__ = ["ConsoleNotifier"]

logger = logging.getLogger(__name__)


class ConsoleNotifier:
    """Writes one line per event; also keeps them in memory so tests and the demo can read them."""

    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        self._write = write
        self.events: list[tuple[str, dict[str, Any]]] = []

    def publish(self, event: str, payload: dict[str, Any]) -> None:
        self.events.append((event, payload))
        line = f"[sagebuild] {event}: " + json.dumps(payload, sort_keys=True, default=str)
        logger.info("notification", extra={"event": event, "build": payload.get("build_number")})
        if self._write is not None:
            self._write(line)
