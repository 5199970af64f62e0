"""Builds that start themselves: git commits, new data, schedules, and the signed launch endpoint.

Every trigger goes through the :class:`TriggerHub`, which coalesces what arrives together into
one build and, while a build runs, into exactly one queued follow-up that carries every reason.
"""
from .hub import TriggerHub, combined_reason

__all__ = ["TriggerHub", "combined_reason"]
