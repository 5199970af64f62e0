"""The validation gate (pure): a metric and a minimum, and a reason that states the numbers."""
from __future__ import annotations

from typing import Any

from ..errors import GateFailed

__all__ = ["check_gate"]


def check_gate(metrics: dict[str, float], gate: dict[str, Any], live_metrics: dict[str, float] | None = None,
               live_version: str | None = None) -> dict[str, Any]:
    """Pass or raise GateFailed. With ``must_beat_live``, the value must also reach the live
    model's value minus ``tolerance`` (no live model, or one without the metric, passes that part).

    >>> check_gate({"acc": 0.95}, {"metric": "acc", "minimum": 0.9})["passed"]
    True
    """
    metric, minimum = gate.get("metric"), gate.get("minimum")
    if metric is None or minimum is None:
        return {"passed": True, "metric": None, "value": None, "minimum": None, "metrics": metrics,
                "summary": "no gate configured"}
    if metric not in metrics:
        reported = ", ".join(sorted(metrics)) or "none"
        raise GateFailed(f"the training job did not report {metric} (metrics reported: {reported}); "
                         "check training.metric_definitions against the script's output")
    value = float(metrics[metric])
    if value < float(minimum):
        raise GateFailed(f"{metric} {value:.4g} is below the minimum {float(minimum):.4g}")
    summary = f"{metric} {value:.4g} >= {float(minimum):.4g}"
    live_value = (live_metrics or {}).get(metric)
    if gate.get("must_beat_live") and live_value is not None:
        tolerance = float(gate.get("tolerance") or 0.0)
        if value < float(live_value) - tolerance:
            slack = f" (tolerance {tolerance:.4g})" if tolerance else ""
            raise GateFailed(f"{metric} {value:.4g} is below the live model's {float(live_value):.4g}"
                             f" ({live_version}){slack}")
        summary += f", live {live_version} {float(live_value):.4g}"
    return {"passed": True, "metric": metric, "value": value, "minimum": minimum, "metrics": metrics,
            "live_value": live_value, "summary": summary}
