"""LedgerBuilds: the Builds port while no engine runs answers from the ledger, or says how to start it."""
from __future__ import annotations

import pytest

from lambda_pipeline.adapters.local.ledger import SqliteLedger
from lambda_pipeline.adapters.local.ledger_builds import NOT_SERVING, LedgerBuilds
from lambda_pipeline.errors import BuildNotFound, EngineNotRunning
from skill.app import SkillApp
from skill.envelopes import intent_request
from skill.settings import SkillSettings


@pytest.fixture
def ledger_builds(tmp_path):
    """Builds 1 and 2 of wine: v1 then v2 deployed to wine-classifier; v1 once on a retired endpoint."""
    clock = iter(range(1000, 2000, 10))
    ledger = SqliteLedger(str(tmp_path / "ledger.db"), clock=lambda: float(next(clock)))
    first = ledger.create_build("wine", "cli", "first")
    second = ledger.create_build("wine", "cli", "second")
    ledger.record_deployment("old-endpoint", "v1", "old-endpoint-v1", first.id)
    ledger.record_deployment("wine-classifier", "v1", "wine-classifier-v1", first.id)
    ledger.record_deployment("wine-classifier", "v2", "wine-classifier-v2", second.id)
    ledger.close()
    return LedgerBuilds(str(tmp_path / "ledger.db"), str(tmp_path / "jobs")), first, second


def test_endpoints_are_the_ledgers_live_deployments_out_of_service(ledger_builds):
    builds, first, second = ledger_builds
    endpoints = {e.name: e for e in builds.endpoints()}
    assert sorted(endpoints) == ["old-endpoint", "wine-classifier"]
    live = endpoints["wine-classifier"]
    assert (live.status, live.model_version, live.endpoint_config, live.build_id, live.url) == (
        "OutOfService", "v2", "wine-classifier-v2", second.id, None)
    assert live.failure_reason == NOT_SERVING and "sagebuild up" in NOT_SERVING
    assert live.updated_at is not None and live.updated_at > endpoints["old-endpoint"].updated_at
    assert endpoints["old-endpoint"].model_version == "v1"


def test_an_empty_ledger_has_no_endpoints(tmp_path):
    SqliteLedger(str(tmp_path / "ledger.db")).close()
    assert LedgerBuilds(str(tmp_path / "ledger.db"), str(tmp_path)).endpoints() == []


def test_what_only_an_engine_has_says_how_to_start_it(ledger_builds):
    builds, first, _ = ledger_builds
    with pytest.raises(EngineNotRunning, match=r"build #1's execution history .* `sagebuild up`"):
        builds.history(1)
    with pytest.raises(BuildNotFound):
        builds.history(9)
    with pytest.raises(EngineNotRunning, match="no endpoint serves 'wine-classifier': start it with `sagebuild up`"):
        builds.invoke("wine-classifier", b"1,2", "text/csv")
    for change in (lambda: builds.start("x"), builds.stop, builds.rollback, builds.plan_rollback):
        with pytest.raises(EngineNotRunning, match="sagebuild up|not running"):
            change()


def test_the_skill_says_nothing_is_live_while_no_engine_serves(ledger_builds):
    """The ledger names v2, but nothing serves it: the skill must not call it live."""
    builds, *_ = ledger_builds
    app = SkillApp(builds, SkillSettings(pipeline="wine"))
    response = app.handle(intent_request("LiveModelIntent"))
    assert response["response"]["outputSpeech"]["ssml"] == "<speak>No model is live yet. Say start a build to deploy one.</speak>"
