"""The engine API answers bad requests clearly; the ledger outlives the engine; the demo runs."""
import json
import urllib.error
import urllib.request

import pytest

from tests.helpers import SAGEBUILD, cli

pytestmark = pytest.mark.e2e


_ENGINES = object()  # raw()'s default: the engine's own token


def raw(engine, method, path, body: bytes | None = None, token: object = _ENGINES):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {engine.token if token is _ENGINES else token}"
    req = urllib.request.Request(engine.url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_api_errors_are_json_with_the_right_status(engine):
    assert raw(engine, "POST", "/v1/builds", b"{not json")[0] == 400
    status, body = raw(engine, "POST", "/v1/builds", b"[1, 2]")
    assert status == 400 and body["error"]["message"] == "request body must be a JSON object"
    status, body = raw(engine, "POST", "/v1/builds", json.dumps({"reason": " "}).encode())
    assert status == 400 and "needs a reason" in body["error"]["message"]
    status, body = raw(engine, "POST", "/v1/builds", json.dumps({"reason": "x", "hyperparameters": [1]}).encode())
    assert status == 400 and body["error"]["type"] == "ConfigError"
    status, body = raw(engine, "GET", "/v1/builds/42")
    assert status == 404 and body["error"]["type"] == "BuildNotFound"
    assert raw(engine, "GET", "/v1/builds?limit=lots")[0] == 400
    assert raw(engine, "GET", "/v2/anything")[0] == 404
    status, body = raw(engine, "POST", "/v1/builds/current/stop", b"{}")
    assert status == 409 and body["error"]["message"] == "no build is running or queued"
    assert raw(engine, "GET", "/v1/health")[1]["status"] == "ok"


def test_the_api_refuses_requests_without_the_engines_token_and_keeps_it_private(project, engine):
    import os
    import stat
    from infrastructure.local.registry import PipelineRegistry
    for token in (None, "", "not-the-token", engine.token[:-1]):
        status, body = raw(engine, "POST", "/v1/builds", json.dumps({"reason": "sneaky"}).encode(), token=token)
        assert status == 401 and body["error"]["type"] == "Unauthorized"
        assert raw(engine, "GET", "/v1/builds", token=token)[0] == 401
    assert raw(engine, "GET", "/v1/builds")[1]["builds"] == []  # nothing was started
    assert "API request without a valid token refused: POST /v1/builds" in engine.log.read_text()
    info = project / ".sagebuild" / "engine.json"
    assert stat.S_IMODE(os.stat(info).st_mode) == 0o600
    registry = PipelineRegistry()
    assert stat.S_IMODE(os.stat(registry.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(registry.home).st_mode) == 0o700
    (entry,) = [e for e in registry.entries(check_health=True) if e.project == str(project)]
    assert entry.name == "wine-classifier" and entry.url == engine.url and entry.token == engine.token
    # The CLI sends the token without the user seeing it:
    assert cli(project, "list").returncode == 0


def test_status_and_logs_read_the_ledger_when_the_engine_is_down(project, engine):
    engine.wait_build(engine.start_build("before shutdown")["number"])
    engine.stop()
    listed = cli(project, "list")
    assert listed.returncode == 0 and "#1" in listed.stdout and "SUCCEEDED" in listed.stdout
    assert "validation accuracy" in cli(project, "logs", "1").stdout
    stop = cli(project, "stop")
    assert stop.returncode == 1 and "not running" in stop.stderr


def test_demo_builds_deploys_calls_and_prints_a_timeline(tmp_path):
    import subprocess
    out = subprocess.run([SAGEBUILD, "demo", "--dir", str(tmp_path / "demo")], capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Build #1 SUCCEEDED: version v1, validation:accuracy" in out.stdout
    assert '"label": "class_0"' in out.stdout
    assert "Timeline of the build:" in out.stdout
    for step in ("Initialize", "Train", "Evaluate", "Register", "Deploy", "VerifyLive", "Notify"):
        assert step in out.stdout.split("Timeline of the build:")[1]
    # a second demo run updates the same project: build 2, served again
    again = subprocess.run([SAGEBUILD, "demo", "--dir", str(tmp_path / "demo")], capture_output=True, text=True,
                           timeout=180)
    assert again.returncode == 0 and "Build #2 SUCCEEDED" in again.stdout
