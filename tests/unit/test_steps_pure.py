import json

import pytest

from lambda_pipeline.config import validate_config
from lambda_pipeline.errors import ConfigError, GateFailed
from lambda_pipeline.model import Build
from lambda_pipeline.steps.gate import check_gate
from lambda_pipeline.steps.handlers import apply_overrides, parse_error, training_job_spec
from lambda_pipeline.steps.polling import next_wait
from sagebuild.present import ago, seconds

POLL = {"initial_seconds": 1, "max_seconds": 30, "backoff_rate": 2.0}


def test_gate_passes_at_the_minimum_and_fails_below_with_both_numbers():
    assert check_gate({"acc": 0.9}, {"metric": "acc", "minimum": 0.9})["passed"]
    with pytest.raises(GateFailed) as err:
        check_gate({"acc": 0.6111}, {"metric": "acc", "minimum": 0.9})
    assert str(err.value) == "acc 0.6111 is below the minimum 0.9"


def test_gate_fails_when_the_metric_was_not_reported():
    with pytest.raises(GateFailed, match="did not report acc .metrics reported: loss"):
        check_gate({"loss": 0.1}, {"metric": "acc", "minimum": 0.9})


def test_no_gate_passes_anything():
    assert check_gate({}, {"metric": None, "minimum": None})["summary"] == "no gate configured"


def test_backoff_grows_geometrically_and_caps():
    waits, w = [], None
    for _ in range(8):
        w = next_wait(w, POLL)
        waits.append(w)
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]
    assert next_wait(0, {**POLL, "initial_seconds": 0}) == 2


def test_parse_error_reads_lambda_causes_and_plain_causes():
    cause = json.dumps({"errorType": "TrainingFailed", "errorMessage": "ValueError: bad (exit code 1)"})
    assert parse_error({"Error": "TrainingFailed", "Cause": cause}) == ("TrainingFailed", "ValueError: bad (exit code 1)")
    assert parse_error({"Error": "States.Timeout", "Cause": ""}) == ("States.Timeout", "a step took longer than its timeout")


def test_training_job_spec_is_script_mode_with_string_hyperparameters():
    cfg = validate_config({"pipeline": "wine", "training": {"hyperparameters": {"depth": 3, "lr": 0.1, "flag": True,
                                                                                  "name": "x"},
                                                             "max_runtime_seconds": 99}})
    build = Build(id="abcdef123456", number=7, pipeline="wine", status="RUNNING", trigger_source="cli",
                  reason="t", created_at=0, version="v7")
    spec = training_job_spec(build, cfg, "file:///code.tar.gz", {"train": "file:///d"}, "file:///out")
    assert spec["TrainingJobName"] == "wine-v7-abcdef"
    assert spec["HyperParameters"] == {"depth": "3", "lr": "0.1", "flag": "true", "name": "x",
                                       "sagemaker_program": "train.py",
                                       "sagemaker_submit_directory": "file:///code.tar.gz"}
    assert spec["StoppingCondition"] == {"MaxRuntimeInSeconds": 99}
    assert spec["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == "file:///d"


def test_overrides_are_validated():
    cfg = validate_config({"pipeline": "wine"})
    assert apply_overrides(cfg, {"depth": 4})["training"]["hyperparameters"] == {"depth": 4}
    with pytest.raises(ConfigError, match="training.hyperparameters.depth"):
        apply_overrides(cfg, {"depth": [1, 2]})


def test_spoken_and_printed_times():
    assert ago(1000, now=1000 + 12 * 60) == "12 minutes ago"
    assert ago(1000, now=1000 + 3600) == "1 hour ago"
    assert ago(1000, now=1003) == "just now"
    assert seconds(3.25) == "3.2s" and seconds(185) == "3m 05s"


def test_a_busy_ledger_becomes_a_transient_error_the_state_machine_retries(tmp_path):
    import sqlite3

    from lambda_pipeline.adapters.local.db import Database
    from lambda_pipeline.errors import TransientError

    db = Database(str(tmp_path / "l.db"), "CREATE TABLE IF NOT EXISTS t (x INTEGER);")
    other = sqlite3.connect(str(tmp_path / "l.db"), isolation_level=None, timeout=0)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    db._conn.execute("PRAGMA busy_timeout = 50")
    with pytest.raises(TransientError, match="the ledger was busy"):
        db.execute("INSERT INTO t VALUES (1)")
    other.execute("ROLLBACK")
    db.execute("INSERT INTO t VALUES (2)")
    assert [r[0] for r in db.query("SELECT x FROM t")] == [2]
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        db.query("SELECT * FROM missing")


def test_keep_polling_backs_off_across_many_polls():
    from lambda_pipeline.steps.handlers import _keep_polling
    cfg = {"polling": POLL}
    state = {"job_name": "j", "wait": 1}
    waits = []
    for _ in range(50):
        state = _keep_polling(dict(state), "InProgress", cfg)
        waits.append(state["wait"])
    assert waits[:5] == [2, 4, 8, 16, 30] and set(waits[5:]) == {30}
    assert state["job_name"] == "j" and state["status"] == "InProgress"


def test_a_failed_rollback_is_summarised_with_what_it_tried_and_why():
    from lambda_pipeline.notifications import summary
    line = summary("model.rollback_failed", {"pipeline": "wine", "endpoint": "wine-ep", "from": "v3", "to": "v2",
                                             "reason": "the container did not pass the ping health check"})
    assert line == ("wine: the rollback of wine-ep from v3 to v2 failed: "
                    "the container did not pass the ping health check")
    assert "None" not in line
