import sqlite3

import pytest

from lambda_pipeline.adapters.local.ledger import SqliteLedger
from lambda_pipeline.errors import BuildNotFound
from lambda_pipeline.model import BuildStatus


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(params=["sqlite", "dynamodb"])
def ledger(request, tmp_path, clock):
    """The same tests hold for the local ledger (SQLite) and the AWS one (DynamoDB, on moto)."""
    if request.param == "sqlite":
        yield SqliteLedger(str(tmp_path / "ledger.db"), clock=clock)
        return
    import boto3
    from moto import mock_aws

    from lambda_pipeline.adapters.aws import DynamoDBLedger
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="ledger", BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                  {"AttributeName": "sk", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                       {"AttributeName": "sk", "KeyType": "RANGE"}])
        yield DynamoDBLedger("ledger", clock=clock, boto3_client=client)


@pytest.fixture
def sqlite_ledger(tmp_path, clock):
    return SqliteLedger(str(tmp_path / "ledger.db"), clock=clock)


def test_builds_are_numbered_and_found_by_number_id_or_latest(ledger):
    a = ledger.create_build("wine", "cli", "first", {"depth": 3})
    b = ledger.create_build("wine", "git", "second")
    assert (a.number, b.number) == (1, 2)
    assert ledger.get_build(1).id == a.id
    assert ledger.get_build("#2").id == b.id
    assert ledger.get_build(a.id).hyperparameters == {"depth": 3}
    assert ledger.get_build().number == 2
    assert [x.number for x in ledger.list_builds()] == [2, 1]


def test_ids_never_read_as_numbers(ledger):
    ids = [ledger.create_build("wine", "cli", str(i)).id for i in range(200)]
    assert all(not i.isdigit() for i in ids)
    assert ledger.get_build(ids[150]).reason == "150"


def test_unknown_build_and_empty_ledger(ledger):
    with pytest.raises(BuildNotFound, match="no builds yet"):
        ledger.get_build()
    ledger.create_build("wine", "cli", "x")
    with pytest.raises(BuildNotFound, match="no build '7'"):
        ledger.get_build(7)


def test_steps_keep_times_and_the_failed_step_is_the_current_one(ledger, clock):
    build = ledger.create_build("wine", "cli", "x", status=BuildStatus.RUNNING)
    ledger.begin_step(build.id, "Initialize")
    clock.now += 2
    ledger.end_step(build.id, "Initialize")
    ledger.begin_step(build.id, "Train")
    clock.now += 5
    done = ledger.finish_build(build.id, BuildStatus.FAILED, reason="ValueError: boom", error_type="TrainingFailed")
    assert done.failed_step == "Train"
    assert [(s.name, s.status, s.duration) for s in done.steps] == [("Initialize", "SUCCEEDED", 2.0),
                                                                    ("Train", "FAILED", 5.0)]


def test_a_retried_build_reopens_with_its_attempt_counted_and_its_later_steps_forgotten(ledger):
    build = ledger.create_build("wine", "cli", "first")
    assert build.attempt == 1
    for step in ("Initialize", "Train", "Deploy", "RollBack"):
        ledger.begin_step(build.id, step)
        ledger.end_step(build.id, step)
    ledger.finish_build(build.id, "FAILED", reason="port taken")
    ledger.forget_steps(build.id, ["Deploy", "VerifyLive", "RollBack"])
    ledger.update_build(build.id, status="RUNNING", ended_at=None, failed_step=None, failure_reason=None,
                        error_type=None, current_step="Deploy", attempt=2)
    again = ledger.get_build(build.id)
    assert (again.status, again.attempt, again.failure_reason, again.ended_at) == ("RUNNING", 2, None, None)
    assert [s.name for s in again.steps] == ["Initialize", "Train"]
    assert ledger.finish_build(build.id, "SUCCEEDED").status == "SUCCEEDED"  # a reopened build ends again
    ledger.forget_steps(build.id, [])  # nothing to forget is fine


def test_first_terminal_status_wins(ledger):
    build = ledger.create_build("wine", "cli", "x", status=BuildStatus.RUNNING)
    ledger.finish_build(build.id, BuildStatus.ABORTED, reason="stopped by a user")
    again = ledger.finish_build(build.id, BuildStatus.SUCCEEDED)
    assert again.status == BuildStatus.ABORTED and again.failure_reason == "stopped by a user"


def test_deployments_form_a_history(ledger, clock):
    ledger.record_deployment("ep", "v1", "ep-v1", "b1")
    clock.now += 10
    ledger.record_deployment("ep", "v2", "ep-v2", "b2")
    live = ledger.live_deployment("ep")
    assert live["version"] == "v2" and live["replaced_at"] is None
    assert ledger.live_deployment("other") is None


def test_wal_mode_and_a_reader_in_another_connection(sqlite_ledger, tmp_path):
    sqlite_ledger.create_build("wine", "cli", "x")
    conn = sqlite3.connect(tmp_path / "ledger.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reader = SqliteLedger(str(tmp_path / "ledger.db"), readonly=True)
    assert reader.get_build(1).reason == "x"
    with pytest.raises(sqlite3.OperationalError):
        reader.create_build("wine", "cli", "y")


def test_live_at_any_time_across_several_deployments_and_rollbacks(ledger, clock):
    timeline = [("v1", "build"), ("v2", "build"), ("v3", "build"), ("v2", "rollback")]
    starts = []
    for version, kind in timeline:
        clock.now += 100
        starts.append(clock.now)
        ledger.record_deployment("ep", version, f"ep-{version}-{clock.now}", None, kind=kind)
    assert ledger.live_at("ep", starts[0] - 1) is None
    for start, (version, _) in zip(starts, timeline):
        assert ledger.live_at("ep", start)["version"] == version  # the moment it went live
        assert ledger.live_at("ep", start + 99.9)["version"] == version  # until just before the next
    assert ledger.live_at("ep", starts[-1] + 10_000)["version"] == "v2"
    assert ledger.live_at("other", starts[1]) is None


def test_previous_good_version_skips_the_live_one_and_failed_ones(ledger, clock):
    assert ledger.previous_good_version("ep") is None
    for version in ("v1", "v2", "v3"):
        clock.now += 10
        ledger.record_deployment("ep", version, f"cfg-{version}", None)
    assert ledger.previous_good_version("ep") == "v2"
    ledger.mark_rolled_back("ep", "cfg-v2", "smoke check failed")
    assert ledger.previous_good_version("ep") == "v1"
    history = ledger.deployments(endpoint="ep")
    assert [d["version"] for d in history] == ["v3", "v2", "v1"]
    assert history[1]["rolled_back_reason"] == "smoke check failed"


def test_an_old_ledger_gains_the_new_columns(tmp_path):
    import sqlite3
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE deployments (id INTEGER PRIMARY KEY AUTOINCREMENT, endpoint TEXT NOT NULL,"
                       " version TEXT NOT NULL, endpoint_config TEXT NOT NULL, build_id TEXT, deployed_at REAL NOT NULL,"
                       " replaced_at REAL); INSERT INTO deployments (endpoint, version, endpoint_config, deployed_at)"
                       " VALUES ('ep', 'v1', 'c1', 5);")
    conn.close()
    ledger = SqliteLedger(str(path))
    assert ledger.live_deployment("ep")["kind"] == "build"


def test_an_old_ledger_gains_the_image_build_column_and_its_builds_read_as_before(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(  # the builds table as SageBuild created it before image builds were recorded
        "CREATE TABLE builds (id TEXT PRIMARY KEY, number INTEGER UNIQUE NOT NULL, pipeline TEXT NOT NULL,"
        " status TEXT NOT NULL, trigger_source TEXT NOT NULL, reason TEXT NOT NULL, created_at REAL NOT NULL,"
        " version TEXT, started_at REAL, ended_at REAL, current_step TEXT, failed_step TEXT, failure_reason TEXT,"
        " error_type TEXT, metrics TEXT NOT NULL DEFAULT '{}', hyperparameters TEXT NOT NULL DEFAULT '{}',"
        " config TEXT, training_job TEXT, model_artifact TEXT, endpoint_name TEXT, endpoint_config TEXT,"
        " execution_arn TEXT);"
        " INSERT INTO builds (id, number, pipeline, status, trigger_source, reason, created_at)"
        " VALUES ('bold', 1, 'wine', 'SUCCEEDED', 'cli', 'old', 5);")
    conn.close()
    ledger = SqliteLedger(str(path))
    assert ledger.get_build(1).image_build is None and ledger.get_build(1).reason == "old"
    ledger.update_build("bold", image_build="sim-images:1234")
    assert SqliteLedger(str(path), readonly=True).get_build("bold").image_build == "sim-images:1234"


def test_the_image_build_id_is_kept(ledger):
    build = ledger.create_build("wine", "cli", "x")
    assert build.image_build is None
    ledger.update_build(build.id, image_build="sagebuild-images:0f1e2d3c")
    assert ledger.get_build(build.id).image_build == "sagebuild-images:0f1e2d3c"
    assert ledger.list_builds()[0].image_build == "sagebuild-images:0f1e2d3c"


def test_triggers_and_state_are_kept(ledger, clock):
    build = ledger.create_build("wine", "git", "2 triggers")
    ledger.add_triggers(build.id, [{"source": "git", "reason": "commit a", "details": {"commit": "a"}, "received_at": 5.0},
                                   {"source": "data", "reason": "new file", "received_at": 6.0}])
    got = ledger.get_build(build.id).triggers
    assert [(t["source"], t["reason"]) for t in got] == [("git", "commit a"), ("data", "new file")]
    assert got[0]["details"] == {"commit": "a"}
    assert ledger.get_state("k") is None
    ledger.set_state("k", "1")
    ledger.set_state("k", "2")
    assert ledger.get_state("k") == "2"


def test_registry_records_models(ledger):
    build = ledger.create_build("wine", "cli", "x")
    ledger.register_model("v1", build.id, "s3://a/model.tar.gz", None, {"acc": 0.9}, {"pipeline": "wine"},
                          data_refs={"train": {"uri": "s3://d", "digest": "abc"}})
    model = ledger.get_model("v1")
    assert model["metrics"] == {"acc": 0.9} and model["data_refs"]["train"]["digest"] == "abc"
    ledger.record_deployment("ep", "v1", "c1", build.id)
    (listed,) = ledger.list_models()
    assert listed["version"] == "v1" and [d["version"] for d in listed["deployments"]] == ["v1"]
    assert ledger.get_model("v9") is None


def test_state_compare_and_swap(ledger):
    assert ledger.swap_state("slot", None, "b1")
    assert not ledger.swap_state("slot", None, "b2")  # taken
    assert not ledger.swap_state("slot", "b9", "b2")  # not what it holds
    assert ledger.swap_state("slot", "b1", "b2") and ledger.get_state("slot") == "b2"
    assert not ledger.swap_state("missing", "b1", "b2")


def test_sqlite_compare_and_swap_lets_exactly_one_of_many_connections_win(tmp_path):
    """Threads each with their own connection (as the engine, the CLI and a git hook are): one wins."""
    import threading
    path = str(tmp_path / "ledger.db")
    SqliteLedger(path).set_state("slot", "old")
    ledgers = [SqliteLedger(path) for _ in range(8)]
    barrier, wins = threading.Barrier(8), []

    def swap(i):
        barrier.wait()
        if ledgers[i].swap_state("slot", "old", f"b{i}"):
            wins.append(i)

    threads = [threading.Thread(target=swap, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and ledgers[0].get_state("slot") == f"b{wins[0]}"
