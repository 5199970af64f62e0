"""Frameworks and project environments, end to end: real engine, real uv, real training and serving.

Environments are cached in the session's SAGEBUILD_ENV_DIR (tests/conftest.py), so the layered
sklearn and xgboost environments are built once and reused by every later test.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, EngineProcess, cli, edit_config, invoke

pytestmark = pytest.mark.e2e

CANCER_ROW = ("17.99,10.38,122.8,1001,0.1184,0.2776,0.3001,0.1471,0.2419,0.07871,1.095,0.9053,8.589,153.4,"
              "0.006399,0.04904,0.05373,0.01587,0.03003,0.006193,25.38,17.33,184.6,2019,0.1622,0.6656,0.7119,"
              "0.2654,0.4601,0.1189")
BENIGN_ROW = ("13.54,14.36,87.46,566.3,0.09779,0.08129,0.06664,0.04781,0.1885,0.05766,0.2699,0.7886,2.058,23.56,"
              "0.008462,0.0146,0.02387,0.01315,0.0198,0.0023,15.11,19.26,99.7,711.2,0.144,0.1773,0.239,0.1288,"
              "0.2977,0.07259")

# A wine project's scripts, changed to need what SageBuild's environment lacks: a package from
# requirements.txt (humanize) and a package of its own in the code folder (winetools).
TRAIN_EXTRA = '''
import humanize
import winetools
print("humanize says", humanize.intcomma(1234567), "and winetools", winetools.VERSION, flush=True)
'''
INFERENCE = '''
import json, os
import humanize, joblib
from winetools import label_of

def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))

def output_fn(prediction, accept):
    return json.dumps({"labels": [label_of(p) for p in prediction.tolist()],
                       "count": humanize.apnumber(len(prediction))}), "application/json"
'''
WINETOOLS = 'VERSION = "0.1"\n\ndef label_of(index):\n    return f"class_{int(index)}"\n'
# Check on jobs and endpoints every second (each check waits up to a second for a change itself):
# the builds end as soon as their work does, without the back-off's longer waits.
WAITS = {"heartbeat_seconds": 300}  # builds move on at their jobs' events; this only bounds a lost one


@pytest.fixture(scope="session")
def xgboost_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("xgb") / "cancer"
    shutil.copytree(REPO / "examples" / "xgboost", root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    subprocess.run([sys.executable, str(root / "prepare_data.py"), "--out", str(root / "data")], check=True,
                   capture_output=True)
    edit_config(root, polling=WAITS)
    return root


def _logs(engine: EngineProcess, build: int) -> str:
    """The build's whole log (training job log, which starts with the environment's lines)."""
    text, offset = "", 0
    while True:
        chunk = engine.api("GET", f"/v1/builds/{build}/logs?offset={offset}")
        text += chunk["text"]
        if chunk["complete"] or chunk["next_offset"] == offset:
            return text
        offset = chunk["next_offset"]


def _train_seconds(build: dict) -> float:
    step = next(s for s in build["steps"] if s["name"] == "Train")
    return step["ended_at"] - step["started_at"]


def test_xgboost_script_with_only_model_fn_trains_passes_its_gate_and_answers_csv_and_json(xgboost_template, tmp_path):
    project = tmp_path / "cancer"
    shutil.copytree(xgboost_template, project)
    engine = EngineProcess(project).start()
    try:
        build = engine.wait_build(engine.start_build("first xgboost")["number"])
        assert build["status"] == "SUCCEEDED", build
        assert build["metrics"]["validation:auc"] >= 0.95
        assert "xgboost 3.2-0" in _logs(engine, 1)
        url = engine.endpoint("cancer-xgboost")["url"]
        status, body = invoke(url, CANCER_ROW + "\n" + BENIGN_ROW)
        malignant, benign = json.loads(body)
        assert status == 200 and malignant < 0.2 < 0.8 < benign  # 0 = malignant, 1 = benign
        status, body = invoke(url, json.dumps({"instances": [[float(x) for x in BENIGN_ROW.split(",")]]}),
                              "application/json")
        assert status == 200 and json.loads(body)[0] == pytest.approx(benign, abs=1e-6)
        libsvm = " ".join(f"{i}:{x}" for i, x in enumerate(CANCER_ROW.split(",")))
        status, body = invoke(url, libsvm, "text/libsvm")
        assert status == 200 and json.loads(body)[0] == pytest.approx(malignant, abs=1e-6)
        status, body = invoke(url, "a=1", "application/x-www-form-urlencoded")
        assert status == 415 and "text/csv, text/libsvm or application/json" in json.loads(body)["error"]
    finally:
        engine.stop()


# In the style of SageMaker's published XGBoost script-mode examples: the container's own libraries
# read LIBSVM channels and (on several hosts) run rabit; the Booster is pickled; only model_fn serves.
CONTAINER_STYLE = '''
import argparse, json, os, pickle
import xgboost as xgb
from sagemaker_containers import entry_point
from sagemaker_xgboost_container import distributed
from sagemaker_xgboost_container.data_utils import get_dmatrix


def _train(params, dtrain, evals, num_boost_round, model_dir, is_master):
    booster = xgb.train(params=params, dtrain=dtrain, evals=evals, num_boost_round=num_boost_round)
    if is_master:
        pickle.dump(booster, open(os.path.join(model_dir, "xgboost-model"), "wb"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--max_depth", type=int)
    parser.add_argument("--eta", type=float)
    parser.add_argument("--objective", type=str)
    parser.add_argument("--num_round", type=int)
    parser.add_argument("--model_dir", type=str, default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", type=str, default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--validation", type=str, default=os.environ.get("SM_CHANNEL_VALIDATION"))
    parser.add_argument("--sm_hosts", type=str, default=os.environ.get("SM_HOSTS"))
    parser.add_argument("--sm_current_host", type=str, default=os.environ.get("SM_CURRENT_HOST"))
    args, _ = parser.parse_known_args()
    dtrain, dval = get_dmatrix(args.train, "libsvm"), get_dmatrix(args.validation, "libsvm")
    params = {"max_depth": args.max_depth, "eta": args.eta, "objective": args.objective, "eval_metric": "auc",
              "nthread": 1}
    train_args = dict(params=params, dtrain=dtrain, evals=[(dtrain, "train"), (dval, "validation")],
                      num_boost_round=args.num_round, model_dir=args.model_dir)
    hosts = json.loads(args.sm_hosts)
    if len(hosts) > 1:
        entry_point._wait_hostname_resolution()
        distributed.rabit_run(exec_fun=_train, args=train_args, include_in_training=dtrain is not None,
                              hosts=hosts, current_host=args.sm_current_host, update_rabit_args=True)
    else:
        _train(is_master=True, **train_args)


def model_fn(model_dir):
    return pickle.load(open(os.path.join(model_dir, "xgboost-model"), "rb"))
'''


def test_a_script_for_the_xgboost_container_using_its_libraries_trains_and_serves_unchanged(xgboost_template,
                                                                                              tmp_path):
    project = tmp_path / "cancer"
    shutil.copytree(xgboost_template, project)
    (project / "model" / "train.py").write_text(CONTAINER_STYLE)
    for channel in ("train", "validation"):
        rows = (project / "data" / channel / f"{channel}.csv").read_text().splitlines()
        (project / "data" / channel / f"{channel}.csv").unlink()
        (project / "data" / channel / f"{channel}.libsvm").write_text("".join(
            row.split(",")[0] + " " + " ".join(f"{i}:{v}" for i, v in enumerate(row.split(",")[1:])) + "\n"
            for row in rows))
    edit_config(project, training={"metric_definitions": [
        {"Name": "validation:auc", "Regex": "validation-auc:([0-9.]+)"}]})
    engine = EngineProcess(project).start()
    try:
        build = engine.wait_build(engine.start_build("container style")["number"])
        assert build["status"] == "SUCCEEDED", build
        assert build["metrics"]["validation:auc"] >= 0.95
        status, body = invoke(engine.endpoint("cancer-xgboost")["url"], CANCER_ROW)
        assert status == 200 and json.loads(body)[0] < 0.2
    finally:
        engine.stop()


def test_requirements_and_own_package_reach_training_and_serving_env_reused_then_rebuilt(project):
    model = project / "model"
    (model / "requirements.txt").write_text("humanize==4.17.0\n")
    (model / "winetools").mkdir()
    (model / "winetools" / "__init__.py").write_text(WINETOOLS)
    (model / "train.py").write_text((model / "train.py").read_text().replace("import joblib", TRAIN_EXTRA
                                                                           + "import joblib", 1))
    (model / "inference.py").write_text(INFERENCE)
    edit_config(project, polling=WAITS, training={"hyperparameters": {"n-estimators": 20, "max-depth": 6}})
    engine = EngineProcess(project).start()
    try:
        first = engine.wait_build(engine.start_build("with requirements")["number"])
        assert first["status"] == "SUCCEEDED", first
        log = _logs(engine, 1)
        assert "humanize says 1,234,567 and winetools 0.1" in log
        assert "building environment" in log and "+ humanize==4.17.0" in log
        status, body = invoke(engine.endpoint()["url"])
        assert status == 200 and json.loads(body) == {"labels": ["class_0"], "count": "one"}
        assert importlib.util.find_spec("humanize") is None  # SageBuild's own environment is untouched

        second = engine.wait_build(engine.start_build("same requirements")["number"])
        assert second["status"] == "SUCCEEDED", second
        log2 = _logs(engine, 2)
        key = log.split("building environment ")[1].split()[0]
        assert f"reusing environment {key}" in log2 and "uv pip install" not in log2
        print(f"Train step: first build {_train_seconds(first):.2f} s, second (reused) {_train_seconds(second):.2f} s")

        (model / "requirements.txt").write_text("humanize==4.17.0\ninflection==0.5.1\n")
        third = engine.wait_build(engine.start_build("one more requirement")["number"])
        assert third["status"] == "SUCCEEDED", third
        log3 = _logs(engine, 3)
        assert "building environment" in log3 and key not in log3 and "+ inflection==0.5.1" in log3
        assert (Path(os.environ["SAGEBUILD_ENV_DIR"]) / key).is_dir()  # the old one stays cached
    finally:
        engine.stop()


def test_a_bad_requirement_fails_the_build_at_train_with_uvs_message(project):
    (project / "model" / "requirements.txt").write_text("sagebuild-no-such-package-xyz==1.0\n")
    edit_config(project, polling=WAITS)
    engine = EngineProcess(project).start()
    try:
        out = cli(project, "start", "--reason", "bad requirement", "--wait")
        assert out.returncode == 1
        assert "building environment" in out.stdout and "(sklearn 1.9-0, 1 requirement(s))" in out.stdout
        build = engine.build(1)
        assert build["status"] == "FAILED" and build["failed_step"] == "Train"
        assert build["failure_reason"].startswith("installing the environment failed: error: No solution found")
        assert "sagebuild-no-such-package-xyz" in build["failure_reason"]
        assert build["failure_reason"] in out.stdout
        assert build["endpoint_config"] is None
    finally:
        engine.stop()


CUSTOM_TRAIN = '''
import json, os, sys
import humanize
try:
    import sklearn
    print("sklearn is here", flush=True)
except ImportError:
    print("no sklearn: only requirements.txt", flush=True)
threshold = float(json.loads(os.environ["SM_HPS"]).get("threshold", 0.5))
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as fh:
    json.dump({"threshold": threshold}, fh)
print("score: 0.9", humanize.intcomma(1000))
'''
CUSTOM_SERVE = '''
import json, os

class Model:
    def __init__(self, threshold):
        self.threshold = threshold
    def predict(self, rows):
        return [1 if sum(row) > self.threshold else 0 for row in rows]

def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as fh:
        return Model(json.load(fh)["threshold"])
'''


def test_custom_framework_runs_in_an_environment_of_only_its_requirements(tmp_path):
    project = tmp_path / "custom"
    (project / "code").mkdir(parents=True)
    (project / "code" / "train.py").write_text(CUSTOM_TRAIN)
    (project / "code" / "serve.py").write_text(CUSTOM_SERVE)
    (project / "code" / "requirements.txt").write_text("humanize==4.17.0\n")
    (project / "sagebuild.json").write_text(json.dumps({
        "pipeline": "custom-model",
        "training": {"framework": "custom", "source_dir": "code", "entry_point": "train.py",
                     "hyperparameters": {"threshold": 1.5},
                     "metric_definitions": [{"Name": "score", "Regex": "score: ([0-9.]+)"}]},
        "gate": {"metric": "score", "minimum": 0.5},
        "deploy": {"entry_point": "serve.py", "sample_payload": "1,1"}, "polling": WAITS}))
    engine = EngineProcess(project).start()
    try:
        build = engine.wait_build(engine.start_build("custom")["number"])
        assert build["status"] == "SUCCEEDED", build
        assert "no sklearn: only requirements.txt" in _logs(engine, 1)
        url = engine.endpoint("custom-model")["url"]
        status, body = invoke(url, "1,1\n0.5,0.5")
        assert status == 200 and json.loads(body) == [1, 0]
        status, body = invoke(url, "[[2, 2]]", "application/json")
        assert status == 200 and json.loads(body) == [1]
    finally:
        engine.stop()


def test_an_unknown_framework_or_version_is_refused_before_any_step(project, engine):
    edit_config(project, training={"framework": "xgboost", "framework_version": "0.1"})
    out = cli(project, "start", "--reason", "old xgboost")
    assert out.returncode == 2
    assert "'training.framework_version' '0.1' is not supported for xgboost: use one of 1.7-1, 3.0-5, 3.2-0" \
        in out.stderr
    edit_config(project, training={"framework": "lightgbm", "framework_version": None})
    out = cli(project, "start")
    assert out.returncode == 2
    assert "'training.framework' 'lightgbm' is not supported: use one of sklearn, xgboost, pytorch, tensorflow, " \
        "custom" in out.stderr
    assert engine.api("GET", "/v1/builds")["builds"] == []  # nothing started


SLOW_BACKEND = '''
import time


def get_requires_for_build_wheel(config_settings=None):
    time.sleep(300)
    return []


get_requires_for_build_editable = get_requires_for_build_wheel


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    time.sleep(300)
'''


def _processes_under(folder: Path) -> list[int]:
    """PIDs whose working directory is inside ``folder`` (a package build the installer started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")).is_relative_to(folder):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_stop_while_the_environment_installs_ends_the_installer_and_aborts(project):
    package = project / "model" / "slowpkg"
    package.mkdir()
    (package / "pyproject.toml").write_text('[build-system]\nrequires = []\nbuild-backend = "slowbackend"\n'
                                            'backend-path = ["."]\n\n[project]\nname = "slowpkg"\nversion = "0.1"\n'
                                            'dynamic = ["description"]\n')
    (package / "slowbackend.py").write_text(SLOW_BACKEND)
    (project / "model" / "requirements.txt").write_text("./slowpkg\n")
    edit_config(project, polling=WAITS)
    engine = EngineProcess(project).start()
    try:
        number = engine.start_build("slow install")["number"]
        engine.wait_build(number, step="Train")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _processes_under(project / ".sagebuild" / "jobs"):
            time.sleep(0.1)
        assert _processes_under(project / ".sagebuild" / "jobs"), "the package build never started"
        started = time.monotonic()
        engine.api("POST", f"/v1/builds/{number}/stop")
        build = engine.wait_build(number, timeout=30)
        assert build["status"] == "ABORTED" and build["failed_step"] == "Train", build
        assert time.monotonic() - started < 15
        assert _processes_under(project / ".sagebuild" / "jobs") == []
        key = _logs(engine, number).split("building environment ")[1].split()[0]
        assert not (Path(os.environ["SAGEBUILD_ENV_DIR"]) / key).exists()  # nothing half-made is kept
    finally:
        engine.stop()
