"""The CLI as a user runs it: one clear line per error, meaningful exit codes."""
import subprocess

from lambda_pipeline.adapters.local.config_store import FileConfigStore
from tests.helpers import SAGEBUILD, cli


def test_init_writes_a_commented_config_that_loads(tmp_path):
    target = tmp_path / "My Churn Model"
    out = cli(tmp_path, "init", str(target))
    assert out.returncode == 0, out.stderr
    text = (target / "sagebuild.json").read_text()
    assert text.lstrip().startswith("//")
    assert FileConfigStore(str(target)).load()["pipeline"] == "my-churn-model"
    again = cli(tmp_path, "init", str(target))
    assert again.returncode == 2 and "already exists; use --force" in again.stderr


def test_init_example_copies_code_and_prepares_data(tmp_path):
    out = cli(tmp_path, "init", str(tmp_path / "w"), "--example", "wine")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "w/model/train.py").exists() and (tmp_path / "w/data/train/train.csv").exists()
    rows = (tmp_path / "w/data/validation/validation.csv").read_text().splitlines()
    assert len(rows) == 54 and len(rows[0].split(",")) == 14
    bad = cli(tmp_path, "init", str(tmp_path / "x"), "--example", "nope")
    assert bad.returncode == 2 and "no example 'nope'; examples: wine, xgboost" in bad.stderr


def test_commands_without_an_engine_say_what_to_do(tmp_path):
    out = cli(tmp_path, "status")
    assert out.returncode == 2 and "no builds in" in out.stderr and "sagebuild up" in out.stderr
    cli(tmp_path, "init")
    out = cli(tmp_path, "start", "--reason", "x")
    assert out.returncode == 1 and "the engine is not running" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_up_without_a_config_is_a_usage_error(tmp_path):
    out = cli(tmp_path, "up")
    assert out.returncode == 2 and "no sagebuild.json" in out.stderr


def test_bad_arguments_exit_2_and_debug_shows_the_traceback(tmp_path):
    out = subprocess.run([SAGEBUILD, "invoke", "x"], capture_output=True, text=True)
    assert out.returncode == 2 and "one of the arguments --data --file is required" in out.stderr
    out = cli(tmp_path, "--debug", "status")
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_hyperparameter_flags_are_parsed_as_json_values():
    from sagebuild.cli import _parse_hps
    assert _parse_hps(["depth=3", "lr=0.5", "name=forest", "flag=true"]) == {"depth": 3, "lr": 0.5,
                                                                           "name": "forest", "flag": True}
