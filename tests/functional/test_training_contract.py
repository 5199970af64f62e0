"""The local training platform honours the SageMaker training container contract."""
import json
import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from lambda_pipeline.adapters.local.artifacts import LocalArtifactStore
from lambda_pipeline.adapters.local.source import ProjectSourceStore
from lambda_pipeline.adapters.local.tarballs import unpack
from lambda_pipeline.adapters.local.training import LocalTrainingPlatform
from tests.helpers import _alive

ENV_DUMP = '''
import json, os, sys
out = {"argv": sys.argv[1:], "env": {k: v for k, v in os.environ.items() if k.startswith("SM_")},
       "files": sorted(os.path.relpath(os.path.join(r, f), os.environ["SM_INPUT_DIR"])
                       for r, _, fs in os.walk(os.environ["SM_INPUT_DIR"]) for f in fs),
       "cwd": os.getcwd()}
open(os.path.join(os.environ["SM_MODEL_DIR"], "contract.json"), "w").write(json.dumps(out))
open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "extra.txt"), "w").write("output data")
print("train loss: 0.50"); print("train loss: 0.25")
print("validation accuracy: 0.9375")
'''


@pytest.fixture
def world(tmp_path):
    project = tmp_path / "project"
    (project / "code").mkdir(parents=True)
    (project / "data" / "train").mkdir(parents=True)
    (project / "data" / "train" / "rows.csv").write_text("1,2,3\n")
    (project / "data" / "validation").mkdir(parents=True)
    (project / "data" / "validation" / "rows.csv").write_text("4,5,6\n")
    artifacts = LocalArtifactStore(str(tmp_path / "artifacts"))
    platform = LocalTrainingPlatform(str(tmp_path / "jobs"), str(tmp_path / "db.sqlite"), artifacts,
                                     long_poll_seconds=0.5, grace_seconds=1.0)
    source = ProjectSourceStore(str(project), artifacts)
    yield project, artifacts, platform, source
    platform.shutdown()


def write_script(project: Path, name: str, body: str) -> None:
    (project / "code" / name).write_text(textwrap.dedent(body))


def spec(source, name, program, hps=None, max_runtime=60, metrics=None):
    hyper = {k: str(v) for k, v in (hps or {}).items()}
    hyper.update(sagemaker_program=program, sagemaker_submit_directory=source.package_code("code"))
    return {"TrainingJobName": name, "HyperParameters": hyper,
            "AlgorithmSpecification": {"TrainingInputMode": "File", "MetricDefinitions": metrics or []},
            "InputDataConfig": [{"ChannelName": c, "DataSource": {"S3DataSource": {"S3Uri": source.channel_uri(f"data/{c}")}}}
                                for c in ("train", "validation")],
            "OutputDataConfig": {"S3OutputPath": "training-jobs"},
            "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime}}


def wait(platform, name, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = platform.describe_training_job(name)
        if job["TrainingJobStatus"] not in ("InProgress", "Stopping"):
            return job
    raise TimeoutError(name)


def test_script_mode_layout_environment_arguments_and_outputs(world, tmp_path):
    project, artifacts, platform, source = world
    write_script(project, "train.py", ENV_DUMP)
    metrics = [{"Name": "train:loss", "Regex": r"train loss: ([0-9.]+)"},
               {"Name": "validation:accuracy", "Regex": r"validation accuracy: ([0-9.]+)"},
               {"Name": "never", "Regex": r"never: ([0-9.]+)"}]
    platform.create_training_job(spec(source, "job-1", "train.py", {"max-depth": 3, "lr": 0.1}, metrics=metrics))
    job = wait(platform, "job-1")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    # metrics: the last value of each matching definition; unmatched ones are absent
    assert {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]} == {"train:loss": 0.25,
                                                                                "validation:accuracy": 0.9375}
    model_tar = artifacts.local_path(job["ModelArtifacts"]["S3ModelArtifacts"])
    assert model_tar.endswith("training-jobs/job-1/output/model.tar.gz")
    unpack(model_tar, str(tmp_path / "model"))
    seen = json.loads((tmp_path / "model" / "contract.json").read_text())
    assert seen["argv"] == ["--max-depth", "3", "--lr", "0.1"]  # script-mode keys are not passed on
    env = seen["env"]
    work = Path(platform.work_dir("job-1"))
    assert env["SM_MODEL_DIR"] == str(work / "model")
    assert env["SM_CHANNEL_TRAIN"] == str(work / "input/data/train")
    assert env["SM_CHANNEL_VALIDATION"] == str(work / "input/data/validation")
    assert json.loads(env["SM_CHANNELS"]) == ["train", "validation"]
    assert json.loads(env["SM_HPS"]) == {"max-depth": 3, "lr": 0.1}
    assert env["SM_HP_MAX-DEPTH"] == "3"
    assert env["SM_OUTPUT_DATA_DIR"] == str(work / "output/data")
    assert json.loads(env["SM_TRAINING_ENV"])["job_name"] == "job-1"
    assert json.loads(env["SM_USER_ARGS"]) == ["--max-depth", "3", "--lr", "0.1"]
    for key in ("SM_INPUT_CONFIG_DIR", "SM_INPUT_DATA_CONFIG", "SM_RESOURCE_CONFIG", "SM_CURRENT_HOST",
                "SM_HOSTS", "SM_NUM_CPUS", "SM_NUM_GPUS", "SM_LOG_LEVEL", "SM_OUTPUT_DIR"):
        assert key in env, key
    assert sorted(seen["files"]) == ["config/hyperparameters.json", "config/inputdataconfig.json",
                                     "config/resourceconfig.json", "data/train/rows.csv", "data/validation/rows.csv"]
    hps_file = json.loads((work / "input/config/hyperparameters.json").read_text())
    assert hps_file == {"max-depth": "3", "lr": "0.1"}  # all strings, as on SageMaker
    assert artifacts.exists("training-jobs/job-1/output/output.tar.gz")
    log = platform.read_log("job-1")
    assert "validation accuracy: 0.9375" in log.text and log.complete


def test_failure_file_is_the_failure_reason(world):
    project, _, platform, source = world
    write_script(project, "train.py", """
        import os, sys
        open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w").write("learning rate must be positive")
        sys.exit(3)
    """)
    platform.create_training_job(spec(source, "job-2", "train.py"))
    job = wait(platform, "job-2")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "learning rate must be positive"


def test_last_stderr_line_is_the_reason_without_a_failure_file(world):
    project, _, platform, source = world
    write_script(project, "train.py", """
        print("starting")
        raise ValueError("column 'alcohol' has 3 missing values")
    """)
    platform.create_training_job(spec(source, "job-3", "train.py"))
    job = wait(platform, "job-3")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "ValueError: column 'alcohol' has 3 missing values (exit code 1)"
    assert "Traceback" in platform.read_log("job-3").text  # the whole story stays in the log


def test_max_runtime_stops_the_job(world):
    project, _, platform, source = world
    write_script(project, "train.py", "import time\nprint('working', flush=True)\ntime.sleep(60)\n")
    started = time.monotonic()
    platform.create_training_job(spec(source, "job-4", "train.py", max_runtime=1))
    job = wait(platform, "job-4")
    assert job["TrainingJobStatus"] == "Stopped" and job["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert time.monotonic() - started < 10


def test_stop_escalates_to_sigkill_and_reaches_grandchildren(world, tmp_path):
    project, _, platform, source = world
    pids = tmp_path / "pids.txt"
    write_script(project, "train.py", f"""
        import os, signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a stubborn script: only SIGKILL ends it
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        print("ready", flush=True)
        time.sleep(120)
    """)
    platform.create_training_job(spec(source, "job-5", "train.py"))
    deadline = time.monotonic() + 20
    while not pids.exists() or " " not in pids.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    script_pid, child_pid = map(int, pids.read_text().split())
    platform.stop_training_job("job-5")
    job = wait(platform, "job-5")
    assert job["TrainingJobStatus"] == "Stopped"
    time.sleep(0.2)
    assert not _alive(script_pid) and not _alive(child_pid)


def test_missing_entry_point_fails_clearly(world):
    project, _, platform, source = world
    write_script(project, "train.py", "print('hi')\n")
    platform.create_training_job(spec(source, "job-6", "nope.py"))
    job = wait(platform, "job-6")
    assert job["TrainingJobStatus"] == "Failed"
    assert "entry point 'nope.py' is not in the source directory" in job["FailureReason"]


def _until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_restarted_engine_adopts_running_jobs_uses_ended_ones_and_fails_lost_ones(world, tmp_path):
    project, artifacts, platform, source = world
    flag = tmp_path / "go"
    write_script(project, "train.py", textwrap.dedent(f"""
        import os, time
        print("epoch 1", flush=True)
        while not os.path.exists({str(flag)!r}):
            time.sleep(0.05)
        open(os.path.join(os.environ["SM_MODEL_DIR"], "m"), "w").write("model")
        """))
    for name in ("job-run", "job-lost"):
        platform.create_training_job(spec(source, name, "train.py"))
        _until(lambda n=name: "epoch 1" in platform.read_log(n).text)
    platform._on_exit = lambda name, returncode: None  # the first engine is dead: it records no end
    os.killpg(platform._row("job-lost")["pid"], signal.SIGKILL)  # runner and script die: no record of the end
    _until(lambda: not _alive(platform._row("job-lost")["pid"]))
    # a second platform on the same database plays the restarted engine
    fresh = LocalTrainingPlatform(str(tmp_path / "jobs"), str(tmp_path / "db.sqlite"), artifacts)
    platform._running.clear()
    found = fresh.recover()
    assert found == {"adopted": ["job-run"], "ended": [], "lost": ["job-lost"]}
    assert "interrupted" in fresh.describe_training_job("job-lost")["FailureReason"]
    flag.write_text("go")
    _until(lambda: fresh.describe_training_job("job-run")["TrainingJobStatus"] != "InProgress")
    job = fresh.describe_training_job("job-run")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert fresh.read_log("job-run").text.count("epoch 1") == 1  # the script ran once; its log is the same file
    again = LocalTrainingPlatform(str(tmp_path / "jobs"), str(tmp_path / "db.sqlite"), artifacts)
    assert again.recover() == {"adopted": [], "ended": [], "lost": []}  # nothing left to recover


def test_a_job_that_ended_while_no_engine_ran_is_recorded_from_its_exit_file(world, tmp_path):
    project, artifacts, platform, source = world
    write_script(project, "train.py", "import os\nopen(os.path.join(os.environ['SM_MODEL_DIR'], 'm'), 'w').write('x')\n")
    platform._on_exit = lambda name, returncode: None  # the engine dies before it sees the end
    platform.create_training_job(spec(source, "job-quick", "train.py"))
    work = Path(platform.work_dir("job-quick"))
    _until(lambda: (work / "exit.json").exists())
    assert platform.describe_training_job("job-quick")["TrainingJobStatus"] == "InProgress"
    fresh = LocalTrainingPlatform(str(tmp_path / "jobs"), str(tmp_path / "db.sqlite"), artifacts)
    assert fresh.recover() == {"adopted": [], "ended": ["job-quick"], "lost": []}
    job = fresh.describe_training_job("job-quick")
    assert job["TrainingJobStatus"] == "Completed" and job["ModelArtifacts"]["S3ModelArtifacts"]
