"""The rendered ASL: portable (no .sync; long work waits on a task token), every error name real,
every task bound to a handler."""
import pytest

from lambda_pipeline import errors
from lambda_pipeline.definition import (TASK_FUNCTIONS, TRANSIENT_ERRORS, VARIANTS, WAIT_FOR_TOKEN, WAITING_STATES,
                                        render_definition, task_function)
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


def test_no_sync_integrations_and_only_the_long_steps_wait_on_a_token(definition):
    for name, state in states(definition).items():
        resource = state.get("Resource", "")
        assert ".sync" not in resource
        assert (resource == WAIT_FOR_TOKEN) == (name in WAITING_STATES), name


def test_waiting_states_pass_their_token_and_recheck_after_a_heartbeat(definition):
    s = states(definition)
    for name, function in WAITING_STATES.items():
        if name not in s:
            continue
        state = s[name]
        assert task_function(state).endswith(f"sagebuild-{function}")
        assert state["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
        assert state["Parameters"]["Payload"]["build_id.$"] == "$.build_id"
        assert state["HeartbeatSecondsPath"] == "$.build.heartbeat_seconds"  # from the build's config snapshot
        assert "TimeoutSeconds" not in state  # a training may run for days; the heartbeat catches lost events
        lost = state["Catch"][0]
        assert lost == {"ErrorEquals": ["States.HeartbeatTimeout", "States.Timeout"], "ResultPath": "$.lost",
                        "Next": f"{name}Recheck"}
        assert s[f"{name}Recheck"] == {"Type": "Pass", "Comment": s[f"{name}Recheck"]["Comment"], "Next": name}


def test_tasks_name_known_functions_and_local_handlers_exist():
    used = set()
    for variant in VARIANTS.values():
        for state in states(render_definition(**variant)).values():
            if state["Type"] == "Task":
                used.add(task_function(state).rsplit(":", 1)[-1].removeprefix("sagebuild-"))
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
        if name == "RollBack":
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
    assert s["RollBack"]["Next"] == "RecordFailure"  # once the previous model serves again
    assert s["RollBack"]["Parameters"]["Payload"]["deploy.$"] == "$.deploy"
    assert s["RollBack"]["Parameters"]["Payload"]["error.$"] == "$.error"


def test_no_wait_states_poll_anything(definition):
    assert not [n for n, st in states(definition).items() if st["Type"] in ("Wait", "Choice")]


def test_image_build_variant_adds_its_state_before_training():
    plain, image = render_definition(), render_definition(image_build=True)
    assert "BuildImage" not in states(plain)
    assert states(image)["Initialize"]["Next"] == "BuildImage"
    assert states(image)["BuildImage"]["Next"] == "Train"


def test_order_of_the_happy_path():
    s = states(render_definition())
    path, name = [], "Initialize"
    while True:
        path.append(name)
        state = s[name]
        if state.get("End"):
            break
        name = state["Next"]
    assert path == ["Initialize", "Train", "Evaluate", "Register", "Deploy", "VerifyLive", "NotifySuccess"]
