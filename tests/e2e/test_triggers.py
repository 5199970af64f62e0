"""Builds start themselves: commits, new data, schedules, signed launch messages; floods coalesce."""
import datetime as dt
import hashlib
import hmac
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.helpers import EngineProcess, cli, edit_config

pytestmark = pytest.mark.e2e
SECRET = "launch-secret-for-tests"


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "model-repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "ds@example.org")
    git(path, "config", "user.name", "Data Scientist")
    (path / "README.md").write_text("first\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "first commit")
    return path


def commit(repo, message):
    (repo / "notes.txt").write_text(message + "\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def wait_for_builds(engine, count, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        builds = engine.api("GET", "/v1/builds")["builds"]
        if len(builds) >= count:
            return builds
        time.sleep(0.1)
    raise TimeoutError(f"{count} builds did not appear")


def test_a_commit_on_the_watched_branch_starts_a_build(project, repo):
    edit_config(project, triggers={"git": {"repo": str(repo), "branch": "main", "poll_seconds": 0.2},
                                   "coalesce_seconds": 0.2})
    engine = EngineProcess(project).start()
    try:
        time.sleep(0.6)  # the watcher notes where main is: that starts nothing
        assert engine.api("GET", "/v1/builds")["builds"] == []
        git(repo, "checkout", "-q", "-b", "feature")
        commit(repo, "work in progress on a branch")
        time.sleep(0.6)
        assert engine.api("GET", "/v1/builds")["builds"] == []  # other branches start nothing
        git(repo, "checkout", "-q", "main")
        sha = commit(repo, "tune the forest")
        (build,) = wait_for_builds(engine, 1)
        assert build["trigger_source"] == "git"
        assert build["reason"] == f"commit {sha[:8]} on main: tune the forest"
        full = engine.build(build["number"])
        assert full["triggers"][0]["details"] == {"commit": sha, "branch": "main", "message": "tune the forest"}
        assert engine.wait_build(build["number"])["status"] == "SUCCEEDED"
    finally:
        engine.stop()


def test_init_git_installs_a_hook_that_starts_builds(project, repo):
    edit_config(project, triggers={"coalesce_seconds": 0.1})
    out = cli(project, "init", "--git", str(repo))
    assert out.returncode == 0 and "post-commit" in out.stdout, out.stderr
    engine = EngineProcess(project).start()
    try:
        sha = commit(repo, "retrain with the new features")
        (build,) = wait_for_builds(engine, 1)
        assert build["reason"] == f"commit {sha[:8]} on main: retrain with the new features"
        engine.wait_build(build["number"])
    finally:
        engine.stop()
    assert "# installed by sagebuild" in (repo / ".git" / "hooks" / "post-commit").read_text()


def test_files_dropped_in_the_data_folder_start_one_build_naming_them(project):
    edit_config(project, triggers={"data": {"paths": ["incoming"], "settle_seconds": 0.5}, "coalesce_seconds": 0.1})
    engine = EngineProcess(project).start()
    try:
        incoming = project / "incoming"
        for name in ("batch-1.csv", "batch-2.csv"):
            (incoming / name).write_text("1,2,3\n")
        (incoming / ".hidden").write_text("ignored")
        (build,) = wait_for_builds(engine, 1)
        assert build["trigger_source"] == "data"
        assert build["reason"] == "data changed: incoming/batch-1.csv, incoming/batch-2.csv"
        assert engine.build(build["number"])["triggers"][0]["details"]["files"] == ["incoming/batch-1.csv",
                                                                                  "incoming/batch-2.csv"]
        engine.wait_build(build["number"])
        time.sleep(1.0)
        assert len(engine.api("GET", "/v1/builds")["builds"]) == 1  # one drop, one build
    finally:
        engine.stop()


def test_schedule_fires_on_time_and_reports_missed_runs(project):
    from infrastructure.local.service import LocalService
    edit_config(project, triggers={"schedule": [{"cron": "0 2 * * *", "reason": "nightly retraining"}],
                                   "coalesce_seconds": 0})
    service = LocalService(str(project))
    service.start()
    try:
        service.scheduler.stop()  # time is injected below, not slept
        day = dt.datetime(2026, 11, 20).astimezone()

        def at(d, h, m=0, s=0):
            return (day + dt.timedelta(days=d, hours=h, minutes=m, seconds=s)).timestamp()

        key = "schedule:0 2 * * *"
        service.ports.ledger.set_state(key, repr(at(0, 1, 59)))
        assert service.scheduler.tick(at(0, 1, 59, 30)) == []
        (fired,) = service.scheduler.tick(at(0, 2, 0, 20))
        assert fired["missed"] == [] and fired["reason"].startswith("nightly retraining (2026-11-20T02:00")
        # the engine is "down" for three nights
        (caught_up,) = service.scheduler.tick(at(3, 9))
        assert len(caught_up["missed"]) == 3
        assert caught_up["reason"].startswith("nightly retraining: catching up 3 run(s) missed while the engine was down")
        assert service.notifier.flush()
        missed = [p for e, p in service.notifier.events if e == "schedule.missed"]
        assert len(missed) == 1 and len(missed[0]["missed"]) == 3
        deadline = time.monotonic() + 10
        recorded = []
        while len(recorded) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            recorded = sorted((t for b in service.builds.list(10) for t in b.triggers), key=lambda t: t["received_at"])
        # both runs are on record (they may share one build: they arrived microseconds apart)
        assert [t["source"] for t in recorded] == ["schedule", "schedule"]
        assert recorded[0]["reason"] == fired["reason"] and recorded[1]["reason"] == caught_up["reason"]
        assert len(recorded[1]["details"]["missed"]) == 3
    finally:
        service.close()


def signed(body: bytes, secret=SECRET):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def launch(engine, body: bytes, signature=None, event=None):
    headers = {"Content-Type": "application/json"}
    if signature:
        headers["X-Hub-Signature-256"] = signature
    if event:
        headers["X-GitHub-Event"] = event
    req = urllib.request.Request(engine.url + "/launch", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def launching(project, monkeypatch):
    monkeypatch.setenv("SAGEBUILD_LAUNCH_SECRET", SECRET)
    edit_config(project, triggers={"coalesce_seconds": 1.0})
    engine = EngineProcess(project).start()
    yield engine
    engine.stop()


def test_signed_launch_starts_a_build_and_bad_ones_get_401(launching):
    body = json.dumps({"reason": "new labels from the annotation team"}).encode()
    assert launch(launching, body)[0] == 401  # unsigned
    status, answer = launch(launching, body, signed(body, "wrong-secret"))
    assert status == 401 and "does not match" in answer["error"]["message"]
    assert launch(launching, body + b" ", signed(body))[0] == 401  # body changed after signing
    assert launching.api("GET", "/v1/builds")["builds"] == []
    status, answer = launch(launching, body, signed(body))
    assert status == 202 and answer["accepted"]
    (build,) = wait_for_builds(launching, 1)
    assert build["reason"] == "new labels from the annotation team" and build["trigger_source"] == "launch"
    log = launching.log.read_text()
    assert log.count("launch request refused") == 3
    launching.wait_build(build["number"])


def test_github_push_events_start_builds_for_the_branch_only(launching):
    push = {"ref": "refs/heads/main", "after": "abc123def456", "repository": {"full_name": "team/wine"},
            "head_commit": {"id": "abc123def456", "message": "Use 200 trees\n\nlonger text"}}
    other = dict(push, ref="refs/heads/experiment")
    for payload, event in ((other, "push"), ({"zen": "hi"}, "ping")):
        body = json.dumps(payload).encode()
        status, answer = launch(launching, body, signed(body), event)
        assert status == 202 and answer["accepted"] is False
    body = json.dumps(push).encode()
    assert launch(launching, body, signed(body), "push")[0] == 202
    (build,) = wait_for_builds(launching, 1)
    assert build["reason"] == "push of abc123de to main: Use 200 trees" and build["trigger_source"] == "git"
    launching.wait_build(build["number"])


def test_a_flood_of_100_triggers_makes_at_most_two_builds_that_carry_every_reason(launching):
    def fire(i):
        body = json.dumps({"reason": f"flood {i:03d}"}).encode()
        assert launch(launching, body, signed(body))[0] == 202

    started = time.monotonic()
    threads = [threading.Thread(target=fire, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started < 5
    time.sleep(2.5)  # the coalescing window closes; a build starts (and maybe one follow-up queues)
    builds = launching.api("GET", "/v1/builds")["builds"]
    assert 1 <= len(builds) <= 2
    reasons = sorted(t["reason"] for b in builds for t in launching.build(b["number"])["triggers"])
    assert reasons == [f"flood {i:03d}" for i in range(100)]
    assert builds[-1]["reason"].startswith(f"{len(launching.build(builds[-1]['number'])['triggers'])} triggers: ")
    for b in builds:
        launching.wait_build(b["number"], timeout=60)
