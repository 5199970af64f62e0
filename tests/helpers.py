"""Test helpers: a project copied from the sample, the real engine as a subprocess, the CLI."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAGEBUILD = str(Path(sys.executable).parent / "sagebuild")
SAMPLE_ROW = "13.2,1.78,2.14,11.2,100,2.65,2.76,0.26,1.28,4.38,1.05,3.4,1050"


def read_config(project: Path) -> dict[str, Any]:
    from lambda_pipeline.config import strip_comments
    return json.loads(strip_comments((project / "sagebuild.json").read_text()))


def write_config(project: Path, config: dict[str, Any]) -> None:
    (project / "sagebuild.json").write_text(json.dumps(config, indent=2))


def edit_config(project: Path, **sections: dict[str, Any]) -> None:
    """Merge keys into config sections, e.g. ``edit_config(p, training={"entry_point": "x.py"})``."""
    config = read_config(project)
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    write_config(project, config)


def cli(project: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SAGEBUILD, "--project", str(project), *args], capture_output=True, text=True,
                          timeout=timeout)


def marked_processes(project: Path) -> list[int]:
    """PIDs of training processes (and their children) the project's engine started."""
    from lambda_pipeline.adapters.local.processes import find_marked_processes
    jobs = project / ".sagebuild" / "jobs"
    found = []
    if jobs.exists():
        for work in jobs.iterdir():
            found += find_marked_processes("training:" + str(work.resolve()))
    return [pid for pid in found if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def wait_for_training_processes(project: Path, count: int, timeout: float = 20) -> None:
    """Until at least ``count`` training processes (the script and its children) run."""
    deadline = time.monotonic() + timeout
    while len(marked_processes(project)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError("training never started")
        time.sleep(0.1)


class Load:
    """Threads calling an endpoint until stopped; ``results`` holds each status (or the exception)."""

    def __init__(self, url: str, clients: int = 4) -> None:
        import threading
        self.url, self.results = url, []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.results.append(invoke(self.url)[0])
            except Exception as exc:  # a refused or reset connection counts as a failure
                self.results.append(repr(exc))

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    @property
    def failures(self) -> list[Any]:
        return [r for r in self.results if r != 200]


class EngineProcess:
    """``sagebuild up`` as a real subprocess, stopped (or killed) by PID."""

    def __init__(self, project: Path) -> None:
        self.project = project
        self.log = project / "engine-test.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.token = ""

    def start(self, timeout: float = 60) -> "EngineProcess":
        info = self.project / ".sagebuild" / "engine.json"
        info.unlink(missing_ok=True)
        self.proc = subprocess.Popen([SAGEBUILD, "--project", str(self.project), "up"],
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"engine exited: {self.log.read_text()[-2000:]}")
            if info.exists():
                try:
                    data = json.loads(info.read_text())
                    if data["pid"] == self.proc.pid:
                        self.url, self.token = data["url"], data["token"]
                        return self
                except (ValueError, KeyError):
                    pass
            time.sleep(0.05)
        raise TimeoutError(f"engine did not start: {self.log.read_text()[-2000:]}")

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def build(self, ref: Any = "latest") -> dict[str, Any]:
        return self.api("GET", f"/v1/builds/{ref}")

    def start_build(self, reason: str = "test", **hps: Any) -> dict[str, Any]:
        return self.api("POST", "/v1/builds", {"reason": reason, "hyperparameters": hps})

    def wait_build(self, ref: Any, timeout: float = 90, until: tuple[str, ...] | None = None,
                   step: str | None = None) -> dict[str, Any]:
        """Poll until the build ends (or reaches ``step`` / a status in ``until``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            build = self.build(ref)
            if until and build["status"] in until:
                return build
            if step and build["current_step"] == step:
                return build
            if not until and not step and build["status"] not in ("QUEUED", "RUNNING"):
                return build
            time.sleep(0.1)
        raise TimeoutError(f"build {ref} still {self.build(ref)['status']}")

    def endpoint(self, name: str = "wine-classifier") -> dict[str, Any]:
        for e in self.api("GET", "/v1/endpoints")["endpoints"]:
            if e["name"] == name:
                return e
        raise KeyError(name)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def invoke(url: str, body: str = SAMPLE_ROW, content_type: str = "text/csv") -> tuple[int, bytes]:
    req = urllib.request.Request(url + "/invocations", data=body.encode(), method="POST",
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
