"""The notebook client, method by method, against a real engine (errors included)."""
import time

import pytest

from lambda_pipeline.adapters.local.config_store import FileConfigStore
from lambda_pipeline.errors import (BuildNotFound, ConfigError, EngineNotRunning, InvocationError, NothingToStop,
                                    NotFound)
from sagebuild.client import VOICE_EQUIVALENTS, ConfigAccess, SageBuild
from skill.handlers import HANDLED_INTENTS
from tests.helpers import SAMPLE_ROW, marked_processes, read_config

pytestmark = pytest.mark.e2e


@pytest.fixture
def sb(populated):
    return SageBuild.local(populated.project, engine="connect")


def test_everything_the_voice_does_the_client_does():
    custom = {i for i in HANDLED_INTENTS if not i.startswith("AMAZON.")}
    assert custom == set(VOICE_EQUIVALENTS)
    for method in VOICE_EQUIVALENTS.values():
        assert callable(getattr(SageBuild, method))


def test_local_needs_a_config_and_says_how_to_connect(tmp_path, project, monkeypatch):
    with pytest.raises(ConfigError, match="no sagebuild.json"):
        SageBuild.local(tmp_path)
    with pytest.raises(EngineNotRunning, match="sagebuild up"):
        SageBuild.local(project, engine="connect")
    with pytest.raises(ValueError, match="engine must be"):
        SageBuild.local(project, engine="cloud")
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    with pytest.raises(ConfigError, match="no AWS region for stack 'prod': pass a region"):
        SageBuild.from_stack("prod")  # (against a stack: tests/functional/test_aws_builds.py)


def test_status_builds_and_their_errors(sb):
    latest = sb.status()
    assert latest.number == 5 and latest.status == "RUNNING" and latest.current_step == "Train"
    first = sb.status(1)
    assert first.succeeded and first.version == "v1" and first.metrics["validation:accuracy"] > 0.85
    assert first.config["pipeline"] == "wine-classifier"
    assert repr(first).startswith("<Build #1 SUCCEEDED v1 validation:accuracy=") and "sb.status(1)" in repr(first)
    failed = sb.status(2)
    assert failed.failed_step == "Train" and "learning rate must be positive" in failed.failure_reason
    assert "Failed at Train" in failed._repr_html_()
    assert sb.status(sb.status(3)).number == 3  # a result addresses its build
    with pytest.raises(BuildNotFound, match="no build '99'"):
        sb.status(99)
    with pytest.raises(BuildNotFound, match="start at 1"):
        sb.status(0)
    with pytest.raises(TypeError, match="a build is a number"):
        sb.status(2.5)
    recent = sb.builds(3)
    assert [b.number for b in recent] == [5, 4, 3] and len(recent) == 3
    assert recent[4].status == "ABORTED"
    with pytest.raises(KeyError, match="build 1 is not in this list"):
        recent[1]
    assert recent._ipython_key_completions_() == [5, 4, 3]
    assert "GATE_FAILED" in recent._repr_html_()
    with pytest.raises(ValueError):
        sb.builds(0)


def test_deployed_and_invoke(sb):
    live = sb.deployed()
    assert live.version == "v1" and live.build_number == 1 and live.status == "InService"
    assert live.metrics["validation:accuracy"] > 0.85 and "serves v1 (build #1)" in repr(live)
    with pytest.raises(NotFound, match="no endpoint 'nope'"):
        sb.deployed("nope")
    answer = sb.invoke(SAMPLE_ROW)
    assert answer["predictions"][0]["label"] == "class_0"
    as_json = sb.invoke([[float(v) for v in SAMPLE_ROW.split(",")]])
    assert as_json == answer
    with pytest.raises(InvocationError, match="HTTP 400"):
        sb.invoke("1,2,3")
    with pytest.raises(TypeError):
        sb.invoke(42)


def test_logs_wait_and_timeline(sb):
    assert "ValueError: learning rate must be positive" in sb.logs(2)
    assert "validation accuracy:" in sb.logs(1)
    assert sb.wait(1, progress=False).succeeded  # already done: returns at once
    with pytest.raises(TimeoutError, match="build 5 is still RUNNING"):
        sb.wait(5, progress=False, timeout=0.3, poll=0.1)
    figure = sb.timeline(1)
    assert figure.axes[0].get_title() == "Build #1 SUCCEEDED (v1)"
    assert len(figure.axes[0].patches) == 7  # one bar per step
    trend = sb.timeline(builds=4)
    assert [t.get_text() for t in trend.axes[0].get_xticklabels()][0] == "#2\nfailed"


def test_config_diff_against_a_build(sb):
    diff = sb.config.diff(1)
    assert diff.changes["training.entry_point"] == ("train.py", "slow.py")
    assert "training.entry_point: 'train.py' -> 'slow.py'" in repr(diff)
    assert not sb.config.diff(5)  # the running build used today's config


def test_config_set_validates_before_writing(project):
    config = ConfigAccess(FileConfigStore(str(project)), builds=None)
    before = (project / "sagebuild.json").read_text()
    with pytest.raises(ConfigError, match="'training.max_runtime_seconds' must be an integer"):
        config.set({"training.max_runtime_seconds": "soon"})
    with pytest.raises(ConfigError, match="unknown key 'gate.minimun'"):
        config.set({"gate.minimun": 0.9})
    assert (project / "sagebuild.json").read_text() == before  # nothing written
    updated = config.set({"training.hyperparameters.max-depth": 3}, gate__minimum=0.9)
    assert updated["training"]["hyperparameters"]["max-depth"] == 3 and updated["gate"]["minimum"] == 0.9
    assert read_config(project)["gate"]["minimum"] == 0.9


def test_start_and_stop(empty_engine):
    sb = SageBuild.local(empty_engine.project, engine="connect")
    with pytest.raises(NothingToStop, match="no build is running"):
        sb.stop()
    with pytest.raises(ConfigError, match="training.hyperparameters.depth"):
        sb.start(hyperparameters={"depth": {"nested": True}})
    build = sb.start(reason="from a test", hyperparameters={"max-depth": 2})
    assert build.status == "RUNNING" and build.hyperparameters == {"max-depth": 2}
    assert build.trigger_source == "notebook"
    stopped = sb.stop(build)  # at once: the execution may not even have started its first step
    assert stopped.status == "ABORTED"
    deadline = time.monotonic() + 5
    while marked_processes(empty_engine.project) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marked_processes(empty_engine.project) == []  # no training job outlives its stopped build
    time.sleep(1.5)
    assert sb.status(build).status == "ABORTED" and marked_processes(empty_engine.project) == []
    with pytest.raises(NothingToStop, match="already ended"):
        sb.stop(build.number)
