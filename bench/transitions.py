"""State transitions of a successful build, SageBuild's back-off against the 2018 fixed polling.

Both state machines really run in moto's ASL interpreter (the engine SageBuild uses locally):
SageBuild's rendered definition, and the same definition with the 2018 design's fixed waits
(30 s while training, 10 s while the endpoint updates). Time is simulated: in this benchmark
only, the Wait state advances a clock instead of sleeping. The SageMaker side is simulated by
step handlers that report a training job done after --training seconds and an endpoint update
after --endpoint seconds, and that ask for the next wait exactly as the real handlers do
(``next_wait`` with the stack's polling config). Transitions are the states entered, as Step
Functions bills them. The last line is one JSON object. Target: <= 40 transitions for the
1-hour build, and growth no more than logarithmic with training time.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class SimClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def simulated_handlers(clock: SimClock, training: float, endpoint: float, policy: dict[str, Any],
                       fixed: dict[str, int] | None) -> dict[str, Any]:
    """Handlers that behave like SageMaker in simulated time; waits follow ``policy`` (or ``fixed``)."""
    from lambda_pipeline.steps.polling import next_wait
    started: dict[str, float] = {}

    def wait_after(kind: str, previous: int | None) -> int:
        return fixed[kind] if fixed else next_wait(previous, policy)

    def poll(kind: str, duration: float, done: str) -> Any:
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            key = "training" if kind == "training" else "deploy"
            state = dict(event[key])
            if clock.now - started[kind] >= duration:
                state.update(status=done, wait=0)
            else:
                state.update(status="InProgress", wait=wait_after(kind, state.get("wait")))
            return state
        return handler

    def start(kind: str, extra: dict[str, Any]) -> Any:
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            started[kind] = clock.now
            return {**extra, "status": "InProgress", "wait": wait_after(kind, None)}
        return handler

    nothing = lambda event, context: {}  # noqa: E731
    return {"initialize": lambda e, c: {"version": "v1", "wait": policy["initial_seconds"]},
            "start_training": start("training", {"job_name": "job"}), "training_status": poll("training", training, "Completed"),
            "evaluate": nothing, "register": lambda e, c: {"version": "v1"},
            "deploy": start("endpoint", {"endpoint": "ep", "endpoint_config": "c2"}),
            "endpoint_status": poll("endpoint", endpoint, "InService"),
            "verify_live": nothing, "notify_success": nothing, "record_failure": nothing}


def fixed_2018(definition: dict[str, Any]) -> dict[str, Any]:
    """Our definition with the 2018 design's fixed waits: 30 s training, 10 s endpoint."""
    old = copy.deepcopy(definition)
    for name, seconds in (("WaitForTraining", 30), ("WaitForEndpoint", 10)):
        old["States"][name] = {"Type": "Wait", "Seconds": seconds, "Next": old["States"][name]["Next"]}
    return old


def run(definition: dict[str, Any], handlers: dict[str, Any], clock: SimClock) -> tuple[int, float, str]:
    from infrastructure.local.engine import Engine
    engine = Engine(handlers)
    try:
        arn = engine.ensure_state_machine("bench", definition)
        execution = engine.start(arn, "run", {"build_id": "bench"})
        deadline = time.monotonic() + 120
        while engine.describe(execution)["status"] == "RUNNING":
            if time.monotonic() > deadline:
                raise TimeoutError("execution did not finish")
            time.sleep(0.01)
        status = engine.describe(execution)["status"]
        events = engine.history(execution)
    finally:
        engine.close()
    entered = sum(1 for e in events if e["type"].endswith("StateEntered"))
    return entered, clock.now, status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainings", default="600,3600,14400", help="training durations to measure, seconds")
    parser.add_argument("--endpoint", type=float, default=900, help="endpoint update duration, seconds")
    args = parser.parse_args()
    from infrastructure.aws.render import _stack_config
    from lambda_pipeline.definition import render_definition
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    policy = _stack_config()["polling"]
    ours = render_definition()
    results: dict[str, Any] = {"polling": policy, "endpoint_seconds": args.endpoint, "runs": []}
    original = WaitFunction._wait_interval
    try:
        for training in (float(t) for t in args.trainings.split(",")):
            row: dict[str, Any] = {"training_seconds": training}
            for label, definition, fixed in (("sagebuild", ours, None),
                                              ("fixed_2018", fixed_2018(ours), {"training": 30, "endpoint": 10})):
                clock = SimClock()
                WaitFunction._wait_interval = lambda self, env, wait_seconds: clock.advance(wait_seconds)
                transitions, simulated, status = run(definition, simulated_handlers(clock, training, args.endpoint,
                                                                                    policy, fixed), clock)
                if status != "SUCCEEDED":
                    raise SystemExit(f"{label} run ended {status}")
                row[label] = {"transitions": transitions, "simulated_seconds": round(simulated),
                              "cost_usd": round(transitions * 0.025 / 1000, 6)}
                print(f"training {training:>6.0f}s  {label:<10} {transitions:4d} transitions, "
                      f"simulated {simulated:6.0f}s", file=sys.stderr)
            results["runs"].append(row)
    finally:
        WaitFunction._wait_interval = original
    hour = next((r for r in results["runs"] if r["training_seconds"] == 3600), None)
    results["one_hour_sagebuild_transitions"] = hour["sagebuild"]["transitions"] if hour else None
    import math
    first, last = results["runs"][0], results["runs"][-1]
    doublings = math.log2(last["training_seconds"] / first["training_seconds"])
    for label in ("sagebuild", "fixed_2018"):
        growth = (last[label]["transitions"] - first[label]["transitions"]) / doublings if doublings else 0.0
        results[f"{label}_transitions_per_doubling"] = round(growth, 2)
    results["targets"] = {"one_hour_max_transitions": 40, "growth": "at most logarithmic in training time"}
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
