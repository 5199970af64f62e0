"""State transitions and notice lag of a successful build: SageBuild's event-driven waits against
the 2018 design's fixed polling.

Both state machines really run in moto's ASL interpreter (the engine SageBuild uses locally):
SageBuild's rendered definition (waitForTaskToken states answered by the jobs' events), and the
2018 design (start task, fixed Wait of 30 s while training and 10 s while the endpoint updates,
status task, Choice). Time is simulated: in this benchmark only, a Wait state and a waiting
state's heartbeat timeout advance a clock instead of sleeping. The SageMaker side is simulated
by step handlers: a training job ends --training seconds after it starts, an endpoint update
--endpoint seconds after it starts. SageBuild runs in three cases:

- ``events``: the job's EventBridge event answers the waiting state EVENT_DELIVERY_SECONDS after
  the job's state change (an assumption: EventBridge delivers SageMaker events "in near real
  time"; the Lambda and SendTaskSuccess add milliseconds);
- ``event_lost``: the event never comes; the stack's heartbeat sweep (every SWEEP_MINUTES)
  answers at its first run after the change (worst case: a full sweep interval later) and heartbeats the waiting state until then;
- ``event_and_sweep_lost``: nothing answers; the state's heartbeat timeout (the stack's
  ``polling.heartbeat_seconds``) enters it again and its handler checks the job.

Transitions are the states entered, as Step Functions bills them. Notice lag is the seconds from
the job's state change to the next state starting (the worst of training and endpoint). The last
line is one JSON object. Targets: <= 20 transitions for the 1-hour build, notice lag <= 5 s with
events and <= the heartbeat when they are lost, no growth with training time when events arrive.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EVENT_DELIVERY_SECONDS = 1.0
CASES = ("events", "event_lost", "event_and_sweep_lost")


class SimClock:
    def __init__(self) -> None:
        self.now = 0.0

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SimulatedSageMaker:
    """Jobs that end after a fixed time, and whoever answers their waiting state in each case."""

    def __init__(self, clock: SimClock, durations: dict[str, float], case: str, heartbeat: int, sweep: int) -> None:
        self.clock, self.durations, self.case = clock, durations, case
        self.heartbeat, self.sweep = heartbeat, sweep
        self.ends: dict[str, float] = {}
        self.lags: dict[str, float] = {}
        self.engine: Any = None

    def start(self, kind: str) -> None:
        self.ends.setdefault(kind, self.clock.now + self.durations[kind])

    def done(self, kind: str) -> bool:
        return self.clock.now >= self.ends[kind]

    def noticed(self, kind: str) -> None:
        self.lags.setdefault(kind, round(self.clock.now - self.ends[kind], 1))

    def answer_time(self, kind: str) -> float | None:
        """When the waiting state gets its answer, or None if only its heartbeat timeout helps."""
        end = self.ends[kind]
        if self.done(kind):
            return self.clock.now  # the state's own check right after it keeps the token
        if self.case == "events":
            return end + EVENT_DELIVERY_SECONDS
        if self.case == "event_lost":  # worst case: the sweep ran just before the change
            return end + self.sweep
        return None

    def waiting(self, kind: str, result: dict[str, Any]) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            self.start(kind)
            at = self.answer_time(kind)
            if at is not None:
                self.clock.now = max(self.clock.now, at)
                self.noticed(kind)
                self.engine.send_task_success(event["task_token"], {**result, "status": "done"})
            return {}
        return handler

    def polled(self, kind: str, result: dict[str, Any]) -> tuple[Any, Any]:
        def start(event: dict[str, Any], context: Any) -> dict[str, Any]:
            self.start(kind)
            return {**result, "status": "InProgress"}

        def check(event: dict[str, Any], context: Any) -> dict[str, Any]:
            if self.done(kind):
                self.noticed(kind)
                return {**result, "status": "done"}
            return {**result, "status": "InProgress"}
        return start, check


def handlers(sim: SimulatedSageMaker, heartbeat: int) -> dict[str, Any]:
    nothing = lambda event, context: {}  # noqa: E731
    start_training, training_status = sim.polled("training", {"job_name": "job", "metrics": {}})
    start_deploy, endpoint_status = sim.polled("endpoint", {"endpoint": "ep", "endpoint_config": "c2"})
    return {"initialize": lambda e, c: {"version": "v1", "heartbeat_seconds": heartbeat},
            "start_training": sim.waiting("training", {"job_name": "job", "metrics": {}}),
            "deploy": sim.waiting("endpoint", {"endpoint": "ep", "endpoint_config": "c2"}),
            "start_training_2018": start_training, "training_status": training_status,
            "deploy_2018": start_deploy, "endpoint_status": endpoint_status,
            "evaluate": nothing, "register": lambda e, c: {"version": "v1"},
            "verify_live": nothing, "notify_success": nothing, "record_failure": nothing}


def fixed_2018(definition: dict[str, Any]) -> dict[str, Any]:
    """Our definition with the 2018 design's waits: start task, fixed Wait, status task, Choice."""
    from lambda_pipeline.definition import local_function_arn
    old = copy.deepcopy(definition)
    states = old["States"]
    for name, start, check, seconds in (("Train", "start_training_2018", "training_status", 30),
                                        ("Deploy", "deploy_2018", "endpoint_status", 10)):
        waiting = states.pop(name)
        key, after = waiting["ResultPath"], waiting["Next"]
        task = {"Type": "Task", "ResultPath": key, "Parameters": {"build_id.$": "$.build_id"},
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}]}
        states[name] = {**task, "Resource": local_function_arn(start), "Next": f"WaitFor{name}"}
        states[f"WaitFor{name}"] = {"Type": "Wait", "Seconds": seconds, "Next": f"Check{name}"}
        states[f"Check{name}"] = {**task, "Resource": local_function_arn(check), "Next": f"{name}Done"}
        states[f"{name}Done"] = {"Type": "Choice", "Default": f"WaitFor{name}", "Choices": [
            {"Variable": f"{key}.status", "StringEquals": "done", "Next": after}]}
    return old


def run(definition: dict[str, Any], sim: SimulatedSageMaker, heartbeat: int) -> tuple[int, str]:
    from infrastructure.local.engine import Engine
    engine = Engine(handlers(sim, heartbeat))
    sim.engine = engine
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
    return sum(1 for e in events if e["type"].endswith("StateEntered")), status


def simulated_time(clock: SimClock) -> Any:
    """Patch moto's Wait and heartbeat waits to advance ``clock``; returns the undo function."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback as cb
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
    from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimedOut

    original_wait = WaitFunction._wait_interval
    original_heartbeat = cb.StateTaskServiceCallback._wait_for_task_token_heartbeat

    def heartbeat_wait(self: Any, env: Any, callback_endpoint: Any, heartbeat_endpoint: Any) -> Any:
        outcome = callback_endpoint.get_outcome()  # answered while its handler ran (simulated later)
        if outcome is not None:
            return outcome
        clock.advance(heartbeat_endpoint._heartbeat_seconds)
        return HeartbeatTimedOut()

    WaitFunction._wait_interval = lambda self, env, wait_seconds: clock.advance(wait_seconds)
    cb.StateTaskServiceCallback._wait_for_task_token_heartbeat = heartbeat_wait

    def undo() -> None:
        WaitFunction._wait_interval = original_wait
        cb.StateTaskServiceCallback._wait_for_task_token_heartbeat = original_heartbeat
    return undo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainings", default="600,3600,14400", help="training durations to measure, seconds")
    parser.add_argument("--endpoint", type=float, default=900, help="endpoint update duration, seconds")
    args = parser.parse_args()
    from infrastructure.aws.render import STACK_POLLING, SWEEP_MINUTES
    from lambda_pipeline.definition import render_definition

    heartbeat, sweep = STACK_POLLING["heartbeat_seconds"], SWEEP_MINUTES * 60
    ours = render_definition()
    results: dict[str, Any] = {"heartbeat_seconds": heartbeat, "sweep_seconds": sweep,
                               "event_delivery_seconds": EVENT_DELIVERY_SECONDS, "endpoint_seconds": args.endpoint,
                               "runs": []}
    for training in (float(t) for t in args.trainings.split(",")):
        row: dict[str, Any] = {"training_seconds": training}
        for label, definition, case in [("sagebuild_" + c, ours, c) for c in CASES] + \
                                       [("fixed_2018", fixed_2018(ours), "polled")]:
            clock = SimClock()
            sim = SimulatedSageMaker(clock, {"training": training, "endpoint": args.endpoint}, case, heartbeat, sweep)
            undo = simulated_time(clock)
            try:
                transitions, status = run(definition, sim, heartbeat)
            finally:
                undo()
            if status != "SUCCEEDED":
                raise SystemExit(f"{label} run ended {status}")
            lag = max(sim.lags.values())
            row[label] = {"transitions": transitions, "simulated_seconds": round(clock.now),
                          "notice_lag_seconds": lag, "lags": sim.lags,
                          "cost_usd": round(transitions * 0.025 / 1000, 6)}
            print(f"training {training:>6.0f}s  {label:<32} {transitions:4d} transitions, "
                  f"simulated {clock.now:6.0f}s, notice lag {lag:6.1f}s", file=sys.stderr)
        results["runs"].append(row)
    hour = next((r for r in results["runs"] if r["training_seconds"] == 3600), None)
    results["one_hour_sagebuild_transitions"] = hour["sagebuild_events"]["transitions"] if hour else None
    results["one_hour_notice_lag_seconds"] = hour["sagebuild_events"]["notice_lag_seconds"] if hour else None
    results["one_hour_lost_event_notice_lag_seconds"] = hour["sagebuild_event_lost"]["notice_lag_seconds"] if hour else None
    results["one_hour_heartbeat_only_notice_lag_seconds"] = (hour["sagebuild_event_and_sweep_lost"]["notice_lag_seconds"]
                                                             if hour else None)
    first, last = results["runs"][0], results["runs"][-1]
    doublings = math.log2(last["training_seconds"] / first["training_seconds"])
    for label in [f"sagebuild_{c}" for c in CASES] + ["fixed_2018"]:
        growth = (last[label]["transitions"] - first[label]["transitions"]) / doublings if doublings else 0.0
        results[f"{label}_transitions_per_doubling"] = round(growth, 2)
    results["targets"] = {"one_hour_max_transitions": 20, "notice_lag_with_events_max_seconds": 5,
                          "notice_lag_lost_event_max_seconds": heartbeat,
                          "growth_with_events": "none (flat in training time)"}
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
