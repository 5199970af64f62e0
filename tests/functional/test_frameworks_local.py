"""Frameworks in process: the config's choice, environment keys and reuse, the XGBoost serving
defaults and the container libraries that XGBoost scripts import."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from lambda_pipeline.adapters.local import serving_defaults as sd
from lambda_pipeline.adapters.local.container_libs.sagemaker_xgboost_container import data_utils, distributed, encoder
from lambda_pipeline.adapters.local.environments import LocalEnvironments, _error_line
from lambda_pipeline.adapters.local.model_server import ModelHandlers
from lambda_pipeline.config import validate_config
from lambda_pipeline.errors import ConfigError
from lambda_pipeline.frameworks import resolve_framework


def _config(**training):
    return {"pipeline": "p1", "training": training}


def test_framework_defaults_to_sklearn_at_the_newest_version_and_bad_ones_list_what_is_supported():
    cfg = validate_config(_config())
    assert cfg["training"]["framework"] == "sklearn" and cfg["training"]["framework_version"] is None
    assert resolve_framework("sklearn", None).version == "1.9-0"
    assert resolve_framework("xgboost", None).packages[0] == "xgboost-cpu~=3.2.0"
    with pytest.raises(ConfigError, match=r"'training.framework' 'lightgbm' is not supported: use one of sklearn, "
                                          r"xgboost, pytorch, tensorflow, custom"):
        validate_config(_config(framework="lightgbm"))
    with pytest.raises(ConfigError, match=r"'training.framework_version' '1.0-1' is not supported for sklearn: use "
                                          r"one of 1.2-1, 1.4-2, 1.9-0"):
        validate_config(_config(framework_version="1.0-1"))
    with pytest.raises(ConfigError, match="does not apply to 'custom'"):
        validate_config(_config(framework="custom", framework_version="1"))
    assert resolve_framework("custom", None).aws_framework == "sklearn"
    assert not resolve_framework("pytorch", "2.6.0").runs_locally


def test_environment_key_follows_framework_version_and_requirements_not_comments(tmp_path):
    envs = LocalEnvironments(tmp_path)
    sk = resolve_framework("sklearn", None)
    base = envs.key(sk, "humanize==4.17.0\n")
    assert envs.key(sk, "# a comment\nhumanize==4.17.0\n\n") == base
    assert envs.key(sk, "humanize==4.16.0\n") != base
    assert envs.key(resolve_framework("xgboost", None), "humanize==4.17.0\n") != base
    assert envs.key(resolve_framework("sklearn", "1.4-2"), "humanize==4.17.0\n") != base


def test_a_layered_environment_is_built_once_then_reused_and_sees_sagebuilds_packages(tmp_path):
    envs = LocalEnvironments(tmp_path)
    lines: list[str] = []
    started = time.monotonic()
    env = envs.prepare(resolve_framework("sklearn", None), "", lines.append)
    first = time.monotonic() - started
    assert env.layered and "building environment" in lines[0]
    started = time.monotonic()
    again = envs.prepare(resolve_framework("sklearn", None), "", lines.append)
    assert again == env and "reusing environment" in lines[-1] and time.monotonic() - started < first + 0.5
    out = subprocess.run([env.python, "-c", "import sklearn, sys; print(sklearn.__version__, sys.prefix)"],
                         capture_output=True, text=True, check=True).stdout.split()
    import sklearn
    assert out == [sklearn.__version__, str(env.path)]


def test_pytorch_does_not_run_locally_and_says_what_to_do(tmp_path):
    with pytest.raises(Exception, match="does not run locally .* use 'custom' with a requirements.txt"):
        LocalEnvironments(tmp_path).prepare(resolve_framework("pytorch", "2.6.0"), "", print)


def test_the_installers_error_line_and_its_cause_make_the_failure_reason():
    lines = ["Using Python 3.11.7 environment at: x", "error: No solution found when resolving dependencies",
             "  cause: Because nope was not found in the package registry"]
    assert _error_line(lines, 1) == ("error: No solution found when resolving dependencies (cause: Because nope was "
                                     "not found in the package registry)")
    assert _error_line(["something broke"], 2) == "something broke"


@pytest.fixture(scope="module")
def booster_dir(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(float)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1}, xgb.DMatrix(x, label=y), 20)
    folder = tmp_path_factory.mktemp("xgb-model")
    booster.save_model(str(folder / "xgboost-model"))
    return folder, booster


def test_xgboost_defaults_load_the_model_and_answer_csv_libsvm_and_json_alike(booster_dir):
    folder, booster = booster_dir
    handlers = ModelHandlers(None, sd.defaults_for("xgboost"))
    model = handlers.model_fn(str(folder))
    assert isinstance(model, xgb.Booster)
    rows = [[1.0, 1.0, 0.0, 0.0], [-1.0, -1.0, 0.5, 0.0]]
    expected = booster.predict(xgb.DMatrix(np.array(rows))).tolist()
    csv = "\n".join(",".join(str(v) for v in r) for r in rows).encode()
    libsvm = "\n".join(" ".join(f"{i}:{v}" for i, v in enumerate(r) if v) for r in rows).encode()
    for body, ctype in ((csv, "text/csv"), (libsvm, "text/libsvm"), (json.dumps(rows).encode(), "application/json"),
                        (json.dumps({"instances": rows}).encode(), "application/json; charset=utf-8")):
        payload, out_type = handlers.invoke(model, body, ctype, "application/json")
        assert out_type == "application/json" and json.loads(payload) == pytest.approx(expected, abs=1e-6), ctype
    payload, out_type = handlers.invoke(model, csv, "text/csv", "text/csv")
    assert out_type == "text/csv" and [float(v) for v in payload.decode().split()] == pytest.approx(expected, 1e-6)
    with pytest.raises(sd.UnsupportedMediaType, match="text/csv, text/libsvm or application/json"):
        handlers.invoke(model, b"x", "application/x-npy", "application/json")
    with pytest.raises(sd.UnsupportedMediaType, match="accept type 'text/html'"):
        handlers.invoke(model, csv, "text/csv", "text/html")


def test_xgboost_model_fn_also_loads_a_pickled_booster_or_sklearn_model(tmp_path, booster_dir):
    _, booster = booster_dir
    (tmp_path / "xgboost-model").write_bytes(pickle.dumps(booster))
    assert isinstance(sd.xgboost_model_fn(str(tmp_path)), xgb.Booster)
    other = tmp_path / "other"
    other.mkdir()
    classifier = xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(np.eye(4), [0, 1, 0, 1])
    (other / "model.pkl").write_bytes(pickle.dumps(classifier))
    assert isinstance(sd.xgboost_model_fn(str(other)), xgb.Booster)
    (other / "notes.txt").write_text("two files and no xgboost-model")
    with pytest.raises(FileNotFoundError, match="no 'xgboost-model'"):
        sd.xgboost_model_fn(str(other))


def test_container_libraries_read_channels_as_the_xgboost_container_does(tmp_path):
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "a.csv").write_text("1,0.5,2\n0,1.5,3\n")
    matrix = data_utils.get_dmatrix(str(tmp_path / "csv"), "csv")
    assert matrix.get_label().tolist() == [1.0, 0.0] and matrix.num_col() == 2
    (tmp_path / "svm").mkdir()
    (tmp_path / "svm" / "a.libsvm").write_text("3 1:0.5 3:2\n")
    (tmp_path / "svm" / "b.libsvm").write_text("4 0:1.5\n")
    matrix = data_utils.get_dmatrix(str(tmp_path / "svm"), "libsvm")
    assert matrix.get_label().tolist() == [3.0, 4.0] and matrix.num_row() == 2 and matrix.num_col() == 4
    assert data_utils.get_dmatrix(str(tmp_path / "missing"), "csv") is None
    assert encoder.decode(b"1,2\n3,4", "text/csv").num_row() == 2
    with pytest.raises(ValueError, match="not supported"):
        encoder.decode(b"", "image/png")
    assert distributed.rabit_run(lambda a, is_master: (a, is_master), {"a": 1}, True, ["algo-1"], "algo-1",
                                 update_rabit_args=True) == (1, True)


def test_custom_defaults_need_no_numpy_and_ask_for_model_fn():
    defaults = sd.defaults_for("custom")
    assert defaults is not None
    with pytest.raises(FileNotFoundError, match="define model_fn"):
        defaults["model_fn"]("/nowhere")
    assert defaults["input_fn"](b"1,2\n3,4", "text/csv") == [[1.0, 2.0], [3.0, 4.0]]
    assert sd.defaults_for("sklearn") is None  # the model server's own


def test_container_libraries_import_in_a_bare_interpreter_path():
    libs = Path(sd.__file__).parent / "container_libs"
    code = ("from sagemaker_containers import entry_point; entry_point._wait_hostname_resolution(); "
            "from sagemaker_xgboost_container.data_utils import get_dmatrix; "
            "from sagemaker_xgboost_container import distributed, encoder; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(libs)})
    assert out.stdout.strip() == "ok", out.stderr


def test_requirements_include_files_and_paths_relative_to_the_code_folder(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "base.txt").write_text("humanize==4.17.0\n")
    (code / "requirements.txt").write_text("-r base.txt\n")
    lines: list[str] = []
    env = LocalEnvironments(tmp_path / "envs").prepare(resolve_framework("sklearn", None), "-r base.txt\n",
                                                       lines.append, cwd=str(code))
    out = subprocess.run([env.python, "-c", "import humanize, sklearn; print(humanize.intcomma(1000))"],
                         capture_output=True, text=True)
    assert out.stdout.strip() == "1,000", (out.stderr, lines)
    assert subprocess.run([sys.executable, "-c", "import humanize"], capture_output=True).returncode != 0
