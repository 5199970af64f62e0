"""The validation gate (pure): a metric and a minimum, and a reason that states the numbers."""
from __future__ import annotations

from typing import Any

from ..errors import GateFailed

__all__ = ["check_gate"]


def check_gate(metrics: dict[str, float], gate: dict[str, Any]) -> dict[str, Any]:
    """Pass or raise GateFailed.

    >>> check_gate({"acc": 0.95}, {"metric": "acc", "minimum": 0.9})["passed"]
    True
    """
    metric, minimum = gate.get("metric"), gate.get("minimum")
    if metric is None:
        return {"passed": True, "metric": None, "value": None, "minimum": None, "metrics": metrics,
                "summary": "no gate configured"}
    if metric not in metrics:
        reported = ", ".join(sorted(metrics)) or "none"
        raise GateFailed(f"the training job did not report {metric} (metrics reported: {reported}); "
                         "check training.metric_definitions against the script's output")
    value = float(metrics[metric])
    if value < float(minimum):
        raise GateFailed(f"{metric} {value:.4g} is below the minimum {float(minimum):.4g}")
    return {"passed": True, "metric": metric, "value": value, "minimum": minimum, "metrics": metrics,
            "summary": f"{metric} {value:.4g} >= {float(minimum):.4g}"}
