"""The rendered ASL: portable (no .sync), every error name real, every task bound to a handler."""
import pytest

from lambda_pipeline import errors
from lambda_pipeline.definition import TASK_FUNCTIONS, TRANSIENT_ERRORS, VARIANTS, render_definition
from lambda_pipeline.steps import STEPS


def states(definition):
    return definition["States"]


@pytest.fixture(params=sorted(VARIANTS))
def definition(request):
    return render_definition(**VARIANTS[request.param])


def test_every_error_name_the_asl_matches_exists(definition):
    for state in states(definition).values():
        for rule in state.get("Retry", []) + state.get("Catch", []):
            for name in rule["ErrorEquals"]:
                if name.startswith(("States.", "Lambda.")):
                    continue
                assert isinstance(getattr(errors, name, None), type), f"{name} is not in lambda_pipeline.errors"


def test_no_sync_or_callback_integrations(definition):
    for state in states(definition).values():
        resource = state.get("Resource", "")
        assert ".sync" not in resource and "waitForTaskToken" not in resource


def test_tasks_name_known_functions_and_local_handlers_exist():
    used = set()
    for variant in VARIANTS.values():
        for state in states(render_definition(**variant)).values():
            if state["Type"] == "Task":
                used.add(state["Resource"].rsplit(":", 1)[-1].removeprefix("sagebuild-"))
    assert used <= set(TASK_FUNCTIONS)
    assert used == set(STEPS)  # every Task of every variant has its handler, and no handler is unused


def test_retries_are_for_transient_errors_only(definition):
    for state in states(definition).values():
        for rule in state.get("Retry", []):
            assert set(rule["ErrorEquals"]) <= set(TRANSIENT_ERRORS)
            assert rule["BackoffRate"] >= 1.5


def test_every_failure_path_records_and_notifies(definition):
    s = states(definition)
    for name, state in s.items():
        if state["Type"] != "Task":
            continue
        catch = state["Catch"][-1]
        assert catch["ErrorEquals"] == ["States.ALL"]
        expected = "BuildFailed" if name in ("RecordFailure", "NotifySuccess") else "RecordFailure"
        assert catch["Next"] == expected, name
        if name in ("RollBack", "CheckRollback"):
            assert catch["ResultPath"] == "$.error.rollback"  # keeps the reason the rollback started
        else:
            assert catch["ResultPath"] == "$.error"
    assert s["RecordFailure"]["Next"] == "BuildFailed"
    assert s["BuildFailed"]["Type"] == "Fail"


def test_a_deployment_that_fails_its_checks_rolls_back_before_failing(definition):
    s = states(definition)
    first, last = s["VerifyLive"]["Catch"]
    assert first == {"ErrorEquals": ["SmokeTestFailed", "DeployFailed"], "ResultPath": "$.error", "Next": "RollBack"}
    assert last["Next"] == "RecordFailure"
    assert s["RollBack"]["Next"] == "WaitForRollback"
    assert s["WaitForRollback"]["SecondsPath"] == "$.rollback.wait"
    assert s["RolledBack"]["Choices"][0] == {"Variable": "$.rollback.status", "StringEquals": "InService",
                                             "Next": "RecordFailure"}


def test_long_work_polls_with_waits_from_the_input(definition):
    s = states(definition)
    waits = {n: st for n, st in s.items() if st["Type"] == "Wait"}
    assert "WaitForTraining" in waits and "WaitForEndpoint" in waits
    for state in waits.values():
        assert "SecondsPath" in state and "Seconds" not in state


def test_image_build_variant_adds_its_states_before_training():
    plain, image = render_definition(), render_definition(image_build=True)
    assert "StartImageBuild" not in states(plain)
    assert states(image)["Initialize"]["Next"] == "StartImageBuild"
    assert states(image)["ImageBuilt"]["Choices"][0]["Next"] == "StartTraining"


def test_order_of_the_happy_path():
    s = states(render_definition())
    path, name = [], "Initialize"
    while True:
        path.append(name)
        state = s[name]
        if state.get("End"):
            break
        name = state["Choices"][0]["Next"] if state["Type"] == "Choice" else state["Next"]
    assert path == ["Initialize", "StartTraining", "WaitForTraining", "CheckTraining", "TrainingDone",
                    "Evaluate", "Register", "Deploy", "WaitForEndpoint", "CheckEndpoint", "EndpointReady",
                    "VerifyLive", "NotifySuccess"]
