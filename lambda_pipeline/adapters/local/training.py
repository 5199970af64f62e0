"""SageMaker training jobs as local subprocesses, honouring the training container contract.

Each job gets a work folder laid out like ``/opt/ml`` (input/config, input/data/<channel>,
model, output) and the ``SM_*`` environment of the SageMaker training toolkit, so a script
written for SageMaker script mode runs unchanged. The job row in SQLite is the platform's own
durable state; the job log is a file in the work folder.
"""
from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from ...errors import NotFound, SageBuildError
from ...model import LogChunk
from ...frameworks import FrameworkChoice, resolve_framework
from .artifacts import LocalArtifactStore
from .db import Database
from .environments import LocalEnvironments
from .job_events import JobEvents
from .job_runner import read_exit
from .processes import find_marked_processes, kill_tree, spawn_supervised, terminate_gracefully
from .tarballs import pack_dir, unpack

__all__ = ["LocalTrainingPlatform", "build_training_env"]

_RUNNER = str(Path(__file__).with_name("job_runner.py"))  # run as a file: no package import at start


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _owner_of(pid: int) -> str:
    """The ``SAGEBUILD_OWNER`` a process was started with ("" if it is not ours or is gone)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return ""
    for item in environ:
        if item.startswith(b"SAGEBUILD_OWNER="):
            return item.split(b"=", 1)[1].decode(errors="replace")
    return ""


def _terminate_group(pid: int, grace_seconds: float) -> None:
    """SIGTERM a process group we did not start, then SIGKILL it after ``grace_seconds``."""
    kill_tree(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        kill_tree(pid, signal.SIGKILL)

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS training_jobs (
  name TEXT PRIMARY KEY, status TEXT NOT NULL, secondary_status TEXT NOT NULL,
  failure_reason TEXT, spec TEXT NOT NULL, work_dir TEXT NOT NULL, pid INTEGER,
  created_at REAL NOT NULL, started_at REAL, ended_at REAL, model_artifact TEXT,
  metrics TEXT NOT NULL DEFAULT '[]'
);
"""
_ACTIVE = ("InProgress", "Stopping")
_SCRIPT_MODE_KEYS = {"sagemaker_program", "sagemaker_submit_directory", "sagemaker_region",
                     "sagemaker_container_log_level", "sagemaker_job_name"}
_STDERR_TAIL = 20
OWNER_PREFIX = "training:"
_ENVIRONMENT = "environment.json"  # what the job's environment held; travels beside model.tar.gz


def build_training_env(work_dir: Path, hyperparameters: dict[str, str], channels: list[str],
                       job_name: str, user_args: list[str]) -> dict[str, str]:
    """The SageMaker training toolkit's ``SM_*`` variables for a job rooted at ``work_dir``."""
    ml = work_dir
    hosts = ["algo-1"]
    hps = {k: _parse_hp(v) for k, v in hyperparameters.items()}
    env = {
        "SM_MODEL_DIR": str(ml / "model"),
        "SM_INPUT_DIR": str(ml / "input"),
        "SM_INPUT_CONFIG_DIR": str(ml / "input" / "config"),
        "SM_OUTPUT_DIR": str(ml / "output"),
        "SM_OUTPUT_DATA_DIR": str(ml / "output" / "data"),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(hps),
        "SM_CURRENT_HOST": hosts[0],
        "SM_HOSTS": json.dumps(hosts),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
        "SM_LOG_LEVEL": "20",
        "SM_USER_ARGS": json.dumps(user_args),
        "SM_INPUT_DATA_CONFIG": json.dumps({c: {"TrainingInputMode": "File"} for c in channels}),
        "SM_RESOURCE_CONFIG": json.dumps({"current_host": hosts[0], "hosts": hosts}),
        "SM_MODULE_DIR": str(ml / "code"),
        "SM_TRAINING_ENV": "",
    }
    for channel in channels:
        env[f"SM_CHANNEL_{channel.upper()}"] = str(ml / "input" / "data" / channel)
    for name, value in hyperparameters.items():
        env[f"SM_HP_{name.upper()}"] = value
    env["SM_TRAINING_ENV"] = json.dumps({
        "job_name": job_name, "model_dir": env["SM_MODEL_DIR"], "channel_input_dirs":
        {c: env[f"SM_CHANNEL_{c.upper()}"] for c in channels}, "hyperparameters": hps,
        "current_host": hosts[0], "hosts": hosts, "num_cpus": int(env["SM_NUM_CPUS"]), "num_gpus": 0,
        "output_data_dir": env["SM_OUTPUT_DATA_DIR"], "output_dir": env["SM_OUTPUT_DIR"],
        "input_dir": env["SM_INPUT_DIR"], "input_config_dir": env["SM_INPUT_CONFIG_DIR"],
        "user_entry_point": "", "log_level": 20})
    return env


def _parse_hp(value: str) -> Any:
    """SM_HPS carries decoded values (the toolkit json-decodes each string when it can)."""
    try:
        return json.loads(value)
    except (json.JSONDecodeError, TypeError):
        return value


class _Running:
    """In-memory companion of an active job: its process and what we know while it runs."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.stop_reason: str | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL)
        self.log_lock = threading.Lock()
        self.pumping = threading.Event()  # set once the runner started: a job's end waits for that
        self.log: Any = None
        self.installer: subprocess.Popen[bytes] | None = None  # uv, while the environment is prepared
        self.adopted: int | None = None  # the runner's PID, for a job a previous engine started
        self.start_lock = threading.Lock()  # a stop and the script's start do not cross


class LocalTrainingPlatform:
    """TrainingPlatform port: jobs are subprocesses in per-job work folders.

    Args:
        root: where job work folders live.
        db_path: SQLite file for the job table (may be the ledger's file).
        artifacts: where ``model.tar.gz`` and ``output.tar.gz`` go.
        python: interpreter that runs training scripts.
        long_poll_seconds: ``describe_training_job`` waits up to this long for an active job to
            change state (0: builds wait for ``events`` instead, answered when the job ends).
        grace_seconds: time between SIGTERM and SIGKILL on stop or max runtime.
        environments: where jobs get their own environment (framework + requirements.txt); without
            it scripts run in ``python`` itself.
        framework_of: the framework a job's spec trains with (default sklearn at its newest version).
    """

    def __init__(self, root: str, db_path: str, artifacts: LocalArtifactStore,
                 python: str = sys.executable, long_poll_seconds: float = 0.0,
                 grace_seconds: float = 5.0, clock: Callable[[], float] = time.time,
                 environments: LocalEnvironments | None = None,
                 framework_of: Callable[[dict[str, Any]], FrameworkChoice] | None = None) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._db = Database(db_path, _SCHEMA)
        self._artifacts = artifacts
        self._python = python
        self._long_poll = long_poll_seconds
        self._grace = grace_seconds
        self._clock = clock
        self._environments = environments
        self._framework_of = framework_of
        self._running: dict[str, _Running] = {}
        self._changed = threading.Condition()
        self.events = JobEvents()  # a job that ended: the engine answers the state waiting on it

    # -- port -----------------------------------------------------------------------------
    def create_training_job(self, spec: dict[str, Any]) -> str:
        """Start a job from a SageMaker ``CreateTrainingJob`` request. Returns its name."""
        name = spec["TrainingJobName"]
        if self._db.query("SELECT 1 FROM training_jobs WHERE name = ?", (name,)):
            raise SageBuildError(f"training job {name!r} already exists")
        hps = {k: str(v) for k, v in spec.get("HyperParameters", {}).items()}
        program = hps.get("sagemaker_program")
        submit = hps.get("sagemaker_submit_directory")
        if not program or not submit:
            raise SageBuildError("local training runs script mode: HyperParameters need "
                                 "sagemaker_program and sagemaker_submit_directory")
        user_hps = {k: v for k, v in hps.items() if k not in _SCRIPT_MODE_KEYS}
        work = self.root / name
        if work.exists():
            shutil.rmtree(work)
        channels = self._lay_out(work, spec, user_hps, submit)
        now = self._clock()
        with self._db.transaction() as conn:
            conn.execute("INSERT INTO training_jobs (name, status, secondary_status, spec, work_dir, created_at)"
                         " VALUES (?, 'InProgress', 'Starting', ?, ?, ?)", (name, json.dumps(spec), str(work), now))
        user_args = [item for k, v in user_hps.items() for item in (f"--{k}", v)]
        env = dict(os.environ)
        env.update(build_training_env(work, user_hps, channels, name, user_args))
        env.update({"PYTHONUNBUFFERED": "1", "SAGEBUILD_OWNER": OWNER_PREFIX + str(work),
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(work / "code"), env.get("PYTHONPATH")]))})
        entry = work / "code" / program
        if not entry.is_file():
            self._finish(name, "Failed", "Failed", f"entry point {program!r} is not in the source directory")
            return name
        run = _Running()
        self._running[name] = run
        run.log = open(work / "job.log", "ab", buffering=0)
        argv = [str(entry), *user_args]
        if self._environments is None:
            self._launch(name, run, work, self._python, argv, env, spec)
            return name
        choice = self._framework_of(spec) if self._framework_of else resolve_framework(None, None)
        with self._db.transaction() as conn:
            conn.execute("UPDATE training_jobs SET secondary_status = 'DownloadingTrainingImage' WHERE name = ?",
                         (name,))
        threading.Thread(target=self._prepare_and_launch, args=(name, run, work, choice, argv, env, spec),
                         name=f"environment-{name}", daemon=True).start()
        return name

    def _prepare_and_launch(self, name: str, run: _Running, work: Path, choice: FrameworkChoice,
                            argv: list[str], env: dict[str, str], spec: dict[str, Any]) -> None:
        """Build (or reuse) the job's environment, then start the script in it; the install log
        goes to the job log, and a failed install fails the job with the installer's error."""
        assert self._environments is not None
        requirements_file = work / "code" / "requirements.txt"
        requirements = requirements_file.read_text() if requirements_file.is_file() else ""

        def log(line: str) -> None:
            with run.log_lock:
                run.log.write((line + "\n").encode())

        def track(proc: subprocess.Popen[bytes] | None) -> None:
            run.installer = proc

        try:
            environment = self._environments.prepare(choice, requirements, log, cwd=str(work / "code"),
                                                     on_process=track)
        except Exception as exc:
            self._running.pop(name, None)
            run.log.close()
            if run.stop_reason is not None:
                self._finish(name, "Stopped", run.stop_reason, "the job was stopped")
            else:
                reason = str(exc) if isinstance(exc, SageBuildError) else f"{type(exc).__name__}: {exc}"
                self._finish(name, "Failed", "Failed", reason[:1024])
            return
        if environment.library_path:  # after the code folder: the script's own modules come first
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(work / "code"), environment.library_path,
                                                              os.environ.get("PYTHONPATH")]))
        (work / _ENVIRONMENT).write_text(json.dumps({"framework": choice.framework, "version": choice.version,
                                                     "requirements": requirements, "key": environment.key}))
        with run.start_lock:
            if run.stop_reason is not None:
                self._running.pop(name, None)
                run.log.close()
                self._finish(name, "Stopped", run.stop_reason, "the job was stopped")
                return
            try:
                self._launch(name, run, work, environment.python, argv, env, spec)
            except OSError as exc:
                self._running.pop(name, None)
                run.log.close()
                self._finish(name, "Failed", "Failed", f"the training script could not start: {exc}")

    def _launch(self, name: str, run: _Running, work: Path, python: str, argv: list[str], env: dict[str, str],
                spec: dict[str, Any]) -> None:
        """Start the script under its runner (``job_runner.py``), which appends its output to the
        job log, records how it ended, and outlives this engine (the next one adopts it)."""
        max_runtime = int(spec.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))
        run.log.close()  # the runner writes the log from now on
        proc = spawn_supervised([sys.executable, _RUNNER, str(work), "--", python, *argv], cwd=str(work / "code"),
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                on_exit=lambda p: self._on_exit(name, p.returncode), name=name, outlive_engine=True)
        run.proc = proc
        run.pumping.set()
        with self._db.transaction() as conn:
            conn.execute("UPDATE training_jobs SET pid = ?, started_at = ?, secondary_status = 'Training'"
                         " WHERE name = ?", (proc.pid, self._clock(), name))
        threading.Thread(target=self._enforce_max_runtime, args=(name, proc, max_runtime),
                         name=f"max-runtime-{name}", daemon=True).start()

    def describe_training_job(self, name: str) -> dict[str, Any]:
        """SageMaker ``DescribeTrainingJob`` shape. Waits up to the long-poll window while active."""
        job = self._row(name)
        if job["status"] in _ACTIVE and self._long_poll > 0:
            deadline = time.monotonic() + self._long_poll
            with self._changed:
                while job["status"] in _ACTIVE and time.monotonic() < deadline:
                    self._changed.wait(timeout=max(0.0, deadline - time.monotonic()))
                    job = self._row(name)
        return self._describe(job)

    def stop_training_job(self, name: str, reason: str = "Stopped") -> None:
        """SIGTERM the job, SIGKILL after the grace period; it ends ``Stopped``."""
        job = self._row(name)
        if job["status"] not in _ACTIVE:
            return
        run = self._running.get(name)
        with self._db.transaction() as conn:
            conn.execute("UPDATE training_jobs SET status = 'Stopping', secondary_status = 'Stopping'"
                         " WHERE name = ?", (name,))
        if run is None:
            self._finish(name, "Stopped", reason, None)
            return
        with run.start_lock:
            run.stop_reason = reason
            if run.adopted is not None:  # a job a previous engine started: its group, by PID
                threading.Thread(target=_terminate_group, args=(run.adopted, self._grace), daemon=True).start()
                return
            if run.proc is None:  # still preparing its environment: end the installer, if one runs
                if run.installer is not None:
                    kill_tree(run.installer.pid, signal.SIGTERM)
                return
        threading.Thread(target=terminate_gracefully, args=(run.proc, self._grace), daemon=True).start()

    def read_log(self, name: str, offset: int = 0) -> LogChunk:
        job = self._row(name)
        path = Path(job["work_dir"]) / "job.log"
        data = b""
        if path.exists():
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(1 << 20)
        complete = job["status"] not in _ACTIVE and len(data) < (1 << 20)
        return LogChunk(text=data.decode("utf-8", "replace"), next_offset=offset + len(data), complete=complete)

    # -- lifecycle ------------------------------------------------------------------------
    def recover(self) -> dict[str, list[str]]:
        """After an engine restart, each job the dead engine ran: ``adopted`` (its runner still
        runs: its end is noticed as any job's), ``ended`` (it ended while no engine ran: its
        result is recorded now), ``lost`` (no runner and no end: killed, recorded Failed)."""
        found: dict[str, list[str]] = {"adopted": [], "ended": [], "lost": []}
        for row in self._db.query("SELECT * FROM training_jobs WHERE status IN ('InProgress', 'Stopping')"):
            name, pid = row["name"], row["pid"]
            if read_exit(row["work_dir"]) is not None:
                self._on_exit(name, None)
                found["ended"].append(name)
            elif pid and _alive(pid) and OWNER_PREFIX + row["work_dir"] in _owner_of(pid):
                run = _Running()
                run.adopted = pid
                run.pumping.set()
                self._running[name] = run
                spec = json.loads(row["spec"])
                left = int(spec.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400)) - (
                    self._clock() - (row["started_at"] or row["created_at"]))
                threading.Thread(target=self._watch_adopted, args=(name, pid, left), name=f"adopted-{name}",
                                 daemon=True).start()
                found["adopted"].append(name)
            else:
                for stray in find_marked_processes(OWNER_PREFIX + row["work_dir"]):
                    kill_tree(stray)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(stray, signal.SIGKILL)
                self._finish(name, "Failed", "Failed",
                             "the engine stopped while this job ran (interrupted), and its process is gone")
                found["lost"].append(name)
        return found

    def shutdown(self) -> None:
        """Stop every active job (engine shutting down)."""
        for name, run in list(self._running.items()):
            if run.proc is None and run.installer is not None:
                run.stop_reason = "EngineShutdown"
                kill_tree(run.installer.pid, signal.SIGTERM)
            if run.proc is not None and run.proc.poll() is None:
                run.stop_reason = "EngineShutdown"
                terminate_gracefully(run.proc, self._grace)
            if run.adopted is not None and _alive(run.adopted):
                run.stop_reason = "EngineShutdown"
                _terminate_group(run.adopted, self._grace)

    def active_jobs(self) -> set[str]:
        """Names of the jobs still InProgress or Stopping (one query, no waiting)."""
        return {r["name"] for r in self._db.query("SELECT name FROM training_jobs WHERE status IN (?, ?)", _ACTIVE)}

    def work_dir(self, name: str) -> str:
        return self._row(name)["work_dir"]

    # -- internals ------------------------------------------------------------------------
    def _lay_out(self, work: Path, spec: dict[str, Any], user_hps: dict[str, str], submit: str) -> list[str]:
        config_dir = work / "input" / "config"
        for sub in (config_dir, work / "model", work / "output" / "data", work / "code"):
            sub.mkdir(parents=True, exist_ok=True)
        unpack(self._artifacts.local_path(submit), str(work / "code"))
        channels = []
        for channel in spec.get("InputDataConfig", []):
            cname = channel["ChannelName"]
            src = channel["DataSource"]["S3DataSource"]["S3Uri"]
            src_path = Path(src[len("file://"):] if src.startswith("file://") else src)
            if not src_path.is_dir():
                raise SageBuildError(f"channel {cname!r}: data folder {src_path} does not exist")
            shutil.copytree(src_path, work / "input" / "data" / cname)
            channels.append(cname)
        (config_dir / "hyperparameters.json").write_text(json.dumps(user_hps, indent=2))
        (config_dir / "inputdataconfig.json").write_text(json.dumps(
            {c: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"} for c in channels}, indent=2))
        (config_dir / "resourceconfig.json").write_text(json.dumps(
            {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "lo"}, indent=2))
        return channels

    def _enforce_max_runtime(self, name: str, proc: subprocess.Popen[bytes], max_runtime: int) -> None:
        try:
            proc.wait(timeout=max_runtime)
        except subprocess.TimeoutExpired:
            logger.warning("training job exceeded its max runtime", extra={"job": name, "seconds": max_runtime})
            self.stop_training_job(name, reason="MaxRuntimeExceeded")

    def _watch_adopted(self, name: str, pid: int, max_runtime_left: float) -> None:
        """An adopted job's runner is not our child: look for its end twice a second."""
        deadline = time.monotonic() + max(max_runtime_left, 0.0)
        while _alive(pid):
            if time.monotonic() > deadline and self._running.get(name) and not self._running[name].stop_reason:
                logger.warning("adopted training job exceeded its max runtime", extra={"job": name})
                self.stop_training_job(name, reason="MaxRuntimeExceeded")
            time.sleep(0.5)
        self._on_exit(name, None)

    def _on_exit(self, name: str, returncode: int | None) -> None:
        """The runner ended: how the script ended is in ``exit.json`` (a runner that was killed
        itself leaves none: then its own exit code says what little is known)."""
        run = self._running.get(name) or _Running()
        if name in self._running:  # a script that ends at once may end before its start is recorded
            run.pumping.wait(timeout=5)
        self._running.pop(name, None)
        work = Path(self._row(name)["work_dir"])
        ended = read_exit(work)
        if ended is not None:
            rc = int(ended.get("rc", 1))
            run.stderr_tail.extend(str(line) for line in ended.get("stderr_tail") or [])
        else:
            rc = returncode if returncode is not None else -signal.SIGKILL
        if run.stop_reason is not None:
            reason = ("the job exceeded its max runtime and was stopped" if run.stop_reason == "MaxRuntimeExceeded"
                      else "the job was stopped")
            self._finish(name, "Stopped", run.stop_reason, reason)
            return
        if rc != 0:
            self._finish(name, "Failed", "Failed", self._failure_reason(work, rc, run))
            return
        try:
            artifact = self._pack_outputs(name, work)
        except OSError as exc:
            self._finish(name, "Failed", "Failed", f"could not package the model: {exc}")
            return
        self._finish(name, "Completed", "Completed", None, artifact)

    def _failure_reason(self, work: Path, rc: int, run: _Running) -> str:
        failure = work / "output" / "failure"
        if failure.exists() and failure.read_text(errors="replace").strip():
            return failure.read_text(errors="replace").strip()[:1024]
        how = f"killed by signal {-rc}" if rc < 0 else f"exit code {rc}"
        lines = list(run.stderr_tail)
        if not lines:
            return f"the training script failed ({how}) without writing to stderr"
        return f"{lines[-1]} ({how})"[:1024]

    def _pack_outputs(self, name: str, work: Path) -> str:
        spec = json.loads(self._row(name)["spec"])
        prefix = spec.get("OutputDataConfig", {}).get("S3OutputPath", "training-jobs").rstrip("/")
        prefix = self._artifacts.key_of(prefix) if prefix.startswith("file://") else prefix
        model_tar = work / "model.tar.gz"
        pack_dir(str(work / "model"), str(model_tar))
        artifact = self._artifacts.put_file(f"{prefix}/{name}/output/model.tar.gz", str(model_tar))
        output_tar = work / "output.tar.gz"
        pack_dir(str(work / "output" / "data"), str(output_tar))
        self._artifacts.put_file(f"{prefix}/{name}/output/output.tar.gz", str(output_tar))
        if (work / _ENVIRONMENT).is_file():  # hosting serves the model in the same environment
            self._artifacts.put_file(f"{prefix}/{name}/output/{_ENVIRONMENT}", str(work / _ENVIRONMENT))
        return artifact

    def _finish(self, name: str, status: str, secondary: str, reason: str | None,
                artifact: str | None = None) -> None:
        row = self._row(name)
        metrics = self._metrics(row) if status == "Completed" else []
        with self._db.transaction() as conn:
            conn.execute("UPDATE training_jobs SET status = ?, secondary_status = ?, failure_reason = ?,"
                         " ended_at = ?, model_artifact = ?, metrics = ? WHERE name = ?",
                         (status, secondary, reason, self._clock(), artifact, json.dumps(metrics), name))
        with self._changed:
            self._changed.notify_all()
        self.events.emit("training", name)

    def _metrics(self, row: Any) -> list[dict[str, Any]]:
        spec = json.loads(row["spec"])
        definitions = spec.get("AlgorithmSpecification", {}).get("MetricDefinitions", [])
        path = Path(row["work_dir"]) / "job.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        found = []
        for definition in definitions:
            values = []
            for match in re.finditer(definition["Regex"], text):
                try:
                    values.append(float(match.group(1)))
                except (ValueError, IndexError):
                    continue
            if values:
                found.append({"MetricName": definition["Name"], "Value": values[-1], "Timestamp": self._clock()})
        return found

    def _row(self, name: str) -> Any:
        rows = self._db.query("SELECT * FROM training_jobs WHERE name = ?", (name,))
        if not rows:
            raise NotFound(f"no training job {name!r}")
        return rows[0]

    def _describe(self, row: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "TrainingJobName": row["name"], "TrainingJobStatus": row["status"],
            "SecondaryStatus": row["secondary_status"], "CreationTime": row["created_at"],
            "FinalMetricDataList": json.loads(row["metrics"]),
        }
        if row["failure_reason"]:
            out["FailureReason"] = row["failure_reason"]
        if row["model_artifact"]:
            out["ModelArtifacts"] = {"S3ModelArtifacts": row["model_artifact"]}
        if row["started_at"]:
            out["TrainingStartTime"] = row["started_at"]
        if row["ended_at"]:
            out["TrainingEndTime"] = row["ended_at"]
        return out
