"""Back-off for the Wait + status-task loops (pure)."""
from __future__ import annotations

import math
from typing import Any

__all__ = ["next_wait"]


def next_wait(previous: int | None, polling: dict[str, Any]) -> int:
    """The next Wait in whole seconds: the previous one times the rate, capped, at least 1.

    >>> next_wait(1, {"initial_seconds": 1, "max_seconds": 60, "backoff_rate": 2.0})
    2
    >>> next_wait(40, {"initial_seconds": 1, "max_seconds": 60, "backoff_rate": 2.0})
    60
    """
    if previous is None:
        return int(polling["initial_seconds"])
    grown = math.ceil(max(previous, 1) * float(polling["backoff_rate"]))
    return int(min(polling["max_seconds"], max(1, grown)))
