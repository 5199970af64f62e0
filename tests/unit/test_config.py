import json

import pytest

from lambda_pipeline.config import load_config_text, validate_config
from lambda_pipeline.errors import ConfigError
from tests.helpers import REPO


def minimal(**extra):
    cfg = {"pipeline": "demo-model"}
    cfg.update(extra)
    return cfg


def test_sample_config_loads_with_comments_and_defaults():
    cfg = load_config_text((REPO / "examples/wine/sagebuild.json").read_text(), "sagebuild.json")
    assert cfg["pipeline"] == "wine-classifier"
    assert cfg["deploy"]["endpoint"] == "wine-classifier"  # defaults to the pipeline name
    assert cfg["training"]["instance_type"] == "local"  # default filled in
    assert cfg["gate"] == {"metric": "validation:accuracy", "minimum": 0.85, "must_beat_live": False, "tolerance": 0.0}


def test_scaffold_template_is_a_valid_config():
    from string import Template
    text = Template((REPO / "sagebuild/scaffold/sagebuild.json.tmpl").read_text()).substitute(pipeline="my-model")
    assert load_config_text(text)["pipeline"] == "my-model"


def test_unknown_key_is_named_with_a_suggestion():
    with pytest.raises(ConfigError) as err:
        validate_config(minimal(training={"hyperparameter": {}}))
    assert "unknown key 'training.hyperparameter'" in str(err.value)
    assert "did you mean 'training.hyperparameters'" in str(err.value)


def test_wrong_type_names_the_key_and_the_value():
    with pytest.raises(ConfigError) as err:
        validate_config(minimal(training={"max_runtime_seconds": "600"}))
    assert "'training.max_runtime_seconds' must be an integer, got string \"600\"" in str(err.value)


def test_boolean_is_not_an_integer():
    with pytest.raises(ConfigError, match="'polling.heartbeat_seconds' must be an integer, got boolean"):
        validate_config(minimal(polling={"heartbeat_seconds": True}))


def test_missing_pipeline_and_bad_name():
    with pytest.raises(ConfigError, match="missing required key 'pipeline'"):
        validate_config({})
    with pytest.raises(ConfigError, match="'pipeline' must be lower-case"):
        validate_config({"pipeline": "Bad Name"})


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        validate_config(minimal(colour=1, builds={"when_running": "sometimes"}))
    assert "unknown key 'colour'" in str(err.value)
    assert "'builds.when_running' must be one of queue, refuse" in str(err.value)


def test_gate_must_name_a_defined_metric():
    with pytest.raises(ConfigError, match="'gate.metric' 'auc' is not defined"):
        validate_config(minimal(gate={"metric": "auc", "minimum": 0.5}))
    with pytest.raises(ConfigError, match="go together"):
        validate_config(minimal(gate={"minimum": 0.5}))


def test_metric_regex_needs_a_group_and_must_compile():
    bad = [{"Name": "a", "Regex": "acc: [0-9.]+"}, {"Name": "b", "Regex": "acc: ([0-9.]+"}]
    with pytest.raises(ConfigError) as err:
        validate_config(minimal(training={"metric_definitions": bad}))
    assert "metric_definitions[0].Regex' needs a capture group" in str(err.value)
    assert "metric_definitions[1].Regex' is not a valid regex" in str(err.value)


def test_malformed_json_reports_line_and_column():
    with pytest.raises(ConfigError, match="not valid JSON: .* at line 2 column"):
        load_config_text('{"pipeline": "a-b",\n  oops}', "sagebuild.json")


def test_non_object_document():
    with pytest.raises(ConfigError, match="must be a JSON object, got list"):
        load_config_text(json.dumps([1, 2]))


def test_deploy_traffic_defaults_to_all_at_once_and_is_validated():
    assert validate_config(minimal())["deploy"]["traffic"] == {"type": "all_at_once", "percent": 10,
                                                                "wait_seconds": 300, "alarms": []}
    canary = validate_config(minimal(deploy={"traffic": {"type": "canary", "percent": 20, "alarms": ["p-5xx"]}}))
    assert canary["deploy"]["traffic"]["type"] == "canary" and canary["deploy"]["traffic"]["percent"] == 20
    with pytest.raises(ConfigError, match="'deploy.traffic.type' must be one of all_at_once, canary, linear"):
        validate_config(minimal(deploy={"traffic": {"type": "blue-green"}}))
    with pytest.raises(ConfigError) as bad:
        validate_config(minimal(deploy={"traffic": {"type": "linear", "percent": 150, "alarms": [3]}}))
    message = str(bad.value)
    assert "'deploy.traffic.percent' is a share of capacity: at most 100, got 150" in message
    assert "'deploy.traffic.alarms' must be a list of CloudWatch alarm names" in message


def test_deploy_workers_is_null_or_an_integer_from_1_to_64():
    assert validate_config(minimal())["deploy"]["workers"] is None  # the CPU count, as SageMaker
    assert validate_config(minimal(deploy={"workers": 4}))["deploy"]["workers"] == 4
    assert validate_config(minimal(deploy={"workers": None}))["deploy"]["workers"] is None
    for bad, message in ((0, "'deploy.workers' must be at least 1, got 0"),
                         (65, "'deploy.workers' must be at most 64, got 65"),
                         ("2", "'deploy.workers' must be an integer, got string"),
                         (2.5, "'deploy.workers' must be an integer, got number"),
                         (True, "'deploy.workers' must be an integer, got boolean")):
        with pytest.raises(ConfigError) as info:
            validate_config(minimal(deploy={"workers": bad}))
        assert message in str(info.value)
