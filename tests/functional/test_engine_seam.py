"""The one seam into moto: Lambda ARNs bound to in-process handlers, errors matched by class name."""
import time

import pytest

from infrastructure.local.engine import Engine
from lambda_pipeline.definition import local_function_arn
from lambda_pipeline.errors import GateFailed


def definition():
    return {"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": local_function_arn("first"), "ResultPath": "$.a", "Next": "W"},
        "W": {"Type": "Wait", "SecondsPath": "$.a.wait", "Next": "B"},
        "B": {"Type": "Task", "Resource": local_function_arn("second"), "ResultPath": "$.b",
              "Retry": [{"ErrorEquals": ["TransientError"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1.0}],
              "Catch": [{"ErrorEquals": ["GateFailed"], "ResultPath": "$.error", "Next": "Caught"}], "End": True},
        "Caught": {"Type": "Pass", "End": True}}}


def wait_done(engine, arn, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = engine.describe(arn)
        if desc["status"] != "RUNNING":
            return desc
        time.sleep(0.02)
    raise TimeoutError(arn)


@pytest.fixture
def calls():
    return []


@pytest.fixture
def engine(calls):
    def first(event, context):
        calls.append(("first", event, context.function_name))
        return {"wait": 0, "seen": event["x"]}

    def second(event, context):
        calls.append(("second", event["a"]["seen"]))
        if event["x"] == "fail":
            raise GateFailed("acc 0.5 is below the minimum 0.9")
        return {"ok": True}

    eng = Engine({"first": first, "second": second})
    yield eng
    eng.close()


def test_handlers_run_in_process_and_outputs_flow(engine, calls):
    arn = engine.ensure_state_machine("seam", definition())
    desc = wait_done(engine, engine.start(arn, "one", {"x": "ok"}))
    assert desc["status"] == "SUCCEEDED"
    assert calls[0] == ("first", {"x": "ok"}, "sagebuild-first")
    assert calls[1] == ("second", "ok")


def test_domain_error_class_name_is_the_error_catch_matches(engine):
    arn = engine.ensure_state_machine("seam", definition())
    execution = engine.start(arn, "two", {"x": "fail"})
    assert wait_done(engine, execution)["status"] == "SUCCEEDED"  # caught, then Pass
    failed = [e for e in engine.history(execution) if e["type"] == "LambdaFunctionFailed"]
    assert failed[0]["lambdaFunctionFailedEventDetails"]["error"] == "GateFailed"
    assert "below the minimum" in failed[0]["lambdaFunctionFailedEventDetails"]["cause"]


def test_many_executions_of_one_state_machine(engine):
    """moto 5.2.1 broke on the second start_execution (pickling an RLock); 5.2.5 must not."""
    arn = engine.ensure_state_machine("seam", definition())
    runs = [engine.start(arn, f"run-{i}", {"x": "ok"}) for i in range(3)]
    assert [wait_done(engine, r)["status"] for r in runs] == ["SUCCEEDED"] * 3
    assert len(engine.executions(arn)) == 3


def test_unbound_function_fails_with_a_clear_error(engine):
    d = definition()
    d["States"]["A"]["Resource"] = local_function_arn("missing")
    arn = engine.ensure_state_machine("seam2", d)
    execution = engine.start(arn, "three", {"x": "ok"})
    desc = wait_done(engine, execution)
    assert desc["status"] == "FAILED"
    assert desc["error"] == "HandlerNotFound"


def test_stop_during_a_wait_aborts(engine):
    d = definition()
    d["States"]["W"] = {"Type": "Wait", "Seconds": 30, "Next": "B"}
    arn = engine.ensure_state_machine("seam3", d)
    execution = engine.start(arn, "four", {"x": "ok"})
    time.sleep(0.3)
    started = time.monotonic()
    engine.stop(execution, "test")
    assert wait_done(engine, execution, timeout=5)["status"] == "ABORTED"
    assert time.monotonic() - started < 2


def test_only_one_engine_per_process(engine):
    from lambda_pipeline.errors import SageBuildError
    with pytest.raises(SageBuildError, match="already running"):
        Engine({})
