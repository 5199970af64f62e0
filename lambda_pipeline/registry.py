"""Registry rules both ledgers share (pure): which version a rollback goes back to."""
from __future__ import annotations

from typing import Any

__all__ = ["previous_good_version"]


def previous_good_version(history: list[dict[str, Any]]) -> str | None:
    """From an endpoint's deployments, newest first: the newest version that served before the
    live one and was not rolled back for failing its checks.

    >>> previous_good_version([{"version": "v3", "replaced_at": None, "rolled_back_reason": None},
    ...                        {"version": "v2", "replaced_at": 9, "rolled_back_reason": "smoke failed"},
    ...                        {"version": "v1", "replaced_at": 5, "rolled_back_reason": None}])
    'v1'
    """
    if not history:
        return None
    live = history[0]["version"] if history[0]["replaced_at"] is None else None
    return next((row["version"] for row in history
                 if row["version"] != live and row["rolled_back_reason"] is None), None)
