"""Local hosting honours the SageMaker serving contract and updates blue/green without failures."""
import json
import threading
import time
import urllib.error
import urllib.request

import joblib
import pytest
from sklearn.datasets import load_wine
from sklearn.tree import DecisionTreeClassifier

from lambda_pipeline.adapters.local.artifacts import LocalArtifactStore
from lambda_pipeline.adapters.local.hosting import LocalHostingPlatform
from lambda_pipeline.adapters.local.tarballs import pack_dir
from tests.helpers import SAMPLE_ROW, invoke

INFERENCE = '''
import json, os, joblib
def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
def output_fn(prediction, accept):
    return json.dumps({"tag": os.environ.get("MODEL_TAG", "%s"), "labels": prediction.tolist()}), "application/json"
'''


def make_model(tmp_path, artifacts, name, depth, tag=None, broken=False):
    folder = tmp_path / "src" / name
    (folder / "model").mkdir(parents=True)
    x, y = load_wine(return_X_y=True)
    joblib.dump(DecisionTreeClassifier(max_depth=depth, random_state=0).fit(x, y), folder / "model" / "model.joblib")
    pack_dir(str(folder / "model"), str(folder / "model.tar.gz"))
    model_uri = artifacts.put_file(f"models/{name}/model.tar.gz", str(folder / "model.tar.gz"))
    code_uri = None
    if tag is not None:
        (folder / "code").mkdir()
        text = INFERENCE % tag if not broken else "raise RuntimeError('cannot import the model code')\n"
        (folder / "code" / "inference.py").write_text(text)
        pack_dir(str(folder / "code"), str(folder / "code.tar.gz"))
        code_uri = artifacts.put_file(f"models/{name}/code.tar.gz", str(folder / "code.tar.gz"))
    return model_uri, code_uri


@pytest.fixture
def hosting(tmp_path):
    artifacts = LocalArtifactStore(str(tmp_path / "artifacts"))
    platform = LocalHostingPlatform(str(tmp_path / "endpoints"), str(tmp_path / "db.sqlite"), artifacts,
                                    ready_timeout=60, workers=2)
    yield platform, artifacts
    platform.shutdown()


def wait_in_service(platform, name, timeout=60):
    return platform.wait_endpoint(name, timeout=timeout)


def deploy(platform, artifacts, tmp_path, name, depth, tag=None, broken=False, endpoint="ep"):
    model_uri, code_uri = make_model(tmp_path, artifacts, name, depth, tag, broken)
    platform.create_model(name, model_uri, code_uri, "inference.py" if code_uri else None)
    platform.create_endpoint_config(f"{name}-config", name)
    if platform.describe_endpoint(endpoint) is None:
        platform.create_endpoint(endpoint, f"{name}-config")
    else:
        platform.update_endpoint(endpoint, f"{name}-config")
    return wait_in_service(platform, endpoint)


def test_default_handlers_serve_a_joblib_model_with_csv_and_json(hosting, tmp_path):
    platform, artifacts = hosting
    desc = deploy(platform, artifacts, tmp_path, "plain", depth=3)
    assert desc["EndpointStatus"] == "InService" and desc["EndpointConfigName"] == "plain-config"
    url = desc["Url"]
    with urllib.request.urlopen(url + "/ping") as resp:
        assert resp.status == 200
    status, body = invoke(url, SAMPLE_ROW + "\n" + SAMPLE_ROW)
    assert status == 200 and json.loads(body) == [0, 0]
    status, body = invoke(url, json.dumps([[float(v) for v in SAMPLE_ROW.split(",")]]), "application/json")
    assert status == 200 and json.loads(body) == [0]
    status, body = invoke(url, "<xml/>", "application/xml")
    assert status == 415 and b"text/csv" in body
    status, body = invoke(url, "1,2", "text/csv")  # wrong feature count: the model's error, a 4xx
    assert status == 400 and b"features" in body
    assert platform.ping_endpoint("ep")


def test_user_inference_functions_are_used(hosting, tmp_path):
    platform, artifacts = hosting
    desc = deploy(platform, artifacts, tmp_path, "custom", depth=2, tag="blue")
    status, body = invoke(desc["Url"])
    assert status == 200 and json.loads(body) == {"tag": "blue", "labels": [0]}


def test_update_is_blue_green_with_zero_failed_requests_under_load(hosting, tmp_path):
    platform, artifacts = hosting
    url = deploy(platform, artifacts, tmp_path, "blue", depth=2, tag="blue")["Url"]
    stop = threading.Event()
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def hammer():
        while not stop.is_set():
            try:
                status, body = invoke(url)
                tag = json.loads(body)["tag"] if status == 200 else body.decode()
            except Exception as exc:  # a refused or reset connection counts as a failure
                status, tag = 0, repr(exc)
            with lock:
                results.append((status, tag))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    desc = deploy(platform, artifacts, tmp_path, "green", depth=4, tag="green")
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    failures = [r for r in results if r[0] != 200]
    tags = [r[1] for r in results if r[0] == 200]
    assert desc["EndpointConfigName"] == "green-config" and desc["Url"] == url  # same address
    assert failures == [], failures[:5]
    assert len(results) > 50
    assert tags[0] == "blue" and tags[-1] == "green"
    first_green = tags.index("green")
    assert "blue" not in tags[first_green + 8:]  # traffic moved once and stayed moved (in-flight may finish)


def test_failed_update_keeps_the_old_model_in_service(hosting, tmp_path):
    platform, artifacts = hosting
    url = deploy(platform, artifacts, tmp_path, "good", depth=2, tag="good")["Url"]
    desc = deploy(platform, artifacts, tmp_path, "bad", depth=2, tag="bad", broken=True)
    assert desc["EndpointStatus"] == "InService"
    assert desc["EndpointConfigName"] == "good-config"
    assert "update to bad-config failed and was rolled back" in desc["FailureReason"]
    assert "cannot import the model code" in desc["FailureReason"]
    status, body = invoke(url)
    assert status == 200 and json.loads(body)["tag"] == "good"


def test_endpoint_comes_back_on_its_port_after_a_restart(hosting, tmp_path):
    platform, artifacts = hosting
    url = deploy(platform, artifacts, tmp_path, "keep", depth=2, tag="keep")["Url"]
    platform.shutdown()
    fresh = LocalHostingPlatform(str(tmp_path / "endpoints"), str(tmp_path / "db.sqlite"), artifacts,
                                 workers=1)
    try:
        assert fresh.restore() == ["ep"]
        desc = wait_in_service(fresh, "ep")
        assert desc["Url"] == url and desc["EndpointConfigName"] == "keep-config"
        assert json.loads(invoke(url)[1])["tag"] == "keep"
    finally:
        fresh.shutdown()


# -- workers, process lifetimes, reads that never wait ---------------------------------------------
def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def all_gone(pids, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def test_swap_with_two_workers_stops_every_old_process_and_delete_stops_the_new(hosting, tmp_path):
    platform, artifacts = hosting
    deploy(platform, artifacts, tmp_path, "blue", depth=2, tag="blue")
    blue = platform.server_pids("ep")
    assert len(blue) == 3 and all(alive(pid) for pid in blue)  # the master and workers=2
    deploy(platform, artifacts, tmp_path, "green", depth=3, tag="green")
    green = platform.server_pids("ep")
    assert len(green) == 3 and not set(green) & set(blue)
    assert all_gone(blue)  # drained, then the whole group stopped
    platform.delete_endpoint("ep")
    assert all_gone(green)
    assert platform.describe_endpoint("ep") is None


def test_shutdown_stops_every_worker(hosting, tmp_path):
    platform, artifacts = hosting
    deploy(platform, artifacts, tmp_path, "only", depth=2)
    pids = platform.server_pids("ep")
    platform.shutdown()
    assert len(pids) == 3 and all_gone(pids)


def test_workers_follow_the_callable_or_the_sagemaker_variable(tmp_path, monkeypatch):
    artifacts = LocalArtifactStore(str(tmp_path / "artifacts"))
    wanted = {"workers": 3}
    platform = LocalHostingPlatform(str(tmp_path / "endpoints"), str(tmp_path / "db.sqlite"), artifacts,
                                    ready_timeout=60, workers=lambda: wanted["workers"])
    try:
        deploy(platform, artifacts, tmp_path, "three", depth=2)
        assert len(platform.server_pids("ep")) == 4
        wanted["workers"] = None  # deploy.workers null: the engine's SAGEMAKER_MODEL_SERVER_WORKERS
        monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "1")
        deploy(platform, artifacts, tmp_path, "one", depth=3)
        assert len(platform.server_pids("ep")) == 2
    finally:
        platform.shutdown()


def test_describe_returns_at_once_while_an_update_runs_and_wait_endpoint_uses_its_clock(hosting, tmp_path):
    platform, artifacts = hosting
    deploy(platform, artifacts, tmp_path, "blue", depth=2)
    model_uri, code_uri = make_model(tmp_path, artifacts, "green", 3)
    platform.create_model("green", model_uri, None, None)
    platform.create_endpoint_config("green-config", "green")
    platform.update_endpoint("ep", "green-config")
    started = time.perf_counter()
    desc = platform.describe_endpoint("ep")
    listed = platform.list_endpoints()
    took = time.perf_counter() - started
    assert desc["EndpointStatus"] == "Updating" and desc["PendingEndpointConfigName"] == "green-config"
    assert listed[0]["EndpointStatus"] == "Updating"
    assert took < 0.05, took
    now, slept = [0.0], []

    def fake_sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    with pytest.raises(TimeoutError, match="still Updating after 1 s"):
        platform.wait_endpoint("ep", timeout=1.0, interval=0.25, sleep=fake_sleep, clock=lambda: now[0])
    assert slept == [0.25] * 4
    assert platform.wait_endpoint("ep", timeout=60)["EndpointConfigName"] == "green-config"


def test_restore_kills_model_servers_left_by_the_previous_engine(tmp_path):
    artifacts = LocalArtifactStore(str(tmp_path / "artifacts"))
    root = tmp_path / "endpoints"
    model_uri, _ = make_model(tmp_path, artifacts, "m", 2)
    model_dir = tmp_path / "src" / "m" / "model"
    import os
    import subprocess
    import sys
    from tests.helpers import REPO
    env = dict(os.environ, SAGEBUILD_OWNER=f"endpoint:{root.resolve()}", PYTHONPATH=str(REPO))
    stray = subprocess.Popen([sys.executable, "-m", "lambda_pipeline.adapters.local.model_server", "--model-dir",
                              str(model_dir), "--workers", "2"], stdout=subprocess.PIPE, env=env,
                             start_new_session=True)
    try:
        pids = json.loads(stray.stdout.readline())["pids"]
        assert len(pids) == 3 and all(alive(pid) for pid in pids)
        fresh = LocalHostingPlatform(str(root), str(tmp_path / "db.sqlite"), artifacts)
        try:
            assert fresh.restore() == []
            assert all_gone(pids, timeout=5)
        finally:
            fresh.shutdown()
    finally:
        stray.kill()
        stray.wait()
        stray.stdout.close()


def test_a_server_still_starting_when_its_endpoint_is_deleted_is_stopped(hosting, tmp_path):
    platform, artifacts = hosting
    model_uri, _ = make_model(tmp_path, artifacts, "late", 2)
    platform.create_model("late", model_uri, None, None)
    platform.create_endpoint_config("late-config", "late")
    platform.create_endpoint("ep", "late-config")
    marker = f"endpoint:{platform.root}"
    from lambda_pipeline.adapters.local.processes import find_marked_processes
    deadline = time.monotonic() + 10
    while not find_marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert find_marked_processes(marker), "the model server never started"
    platform.delete_endpoint("ep")  # before the model server answered /ping
    assert find_marked_processes(marker) == []  # stopped by delete itself, not when it would be ready
    time.sleep(0.3)
    assert platform.describe_endpoint("ep") is None  # the abandoned rollout records nothing
