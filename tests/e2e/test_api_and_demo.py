"""The engine API answers bad requests clearly; the ledger outlives the engine; the demo runs."""
import json
import urllib.error
import urllib.request

import pytest

from tests.helpers import SAGEBUILD, cli

pytestmark = pytest.mark.e2e


def raw(engine, method, path, body: bytes | None = None):
    req = urllib.request.Request(engine.url + path, data=body, method=method,
                                 headers={"Content-Type": "application/json"})
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
