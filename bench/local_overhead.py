"""Engine overhead of a local build, against doing the same work by hand, in the same run.

Baseline: run the sample's train.py directly (as a SageMaker script-mode script, with the same
channels), then start the same model server on the model and wait for /ping.
Local build: the full state machine (initialize, train, gate, register, deploy, verify,
notify) through the embedded engine, from `start` to the build ending SUCCEEDED with the
endpoint live. Medians over --runs. The last line is one JSON object; the target is ratio <= 1.15 (issue 12: no polling waits).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def wait_ping(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise TimeoutError("model server did not answer /ping")


def direct_run(project: Path, scratch: Path) -> tuple[float, float]:
    """(train seconds, serve-start seconds) doing it by hand."""
    model_dir = scratch / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    model_dir.mkdir(parents=True)
    env = dict(os.environ, SM_MODEL_DIR=str(model_dir), SM_CHANNEL_TRAIN=str(project / "data/train"),
               SM_CHANNEL_VALIDATION=str(project / "data/validation"), SM_OUTPUT_DIR=str(scratch))
    started = time.monotonic()
    subprocess.run([sys.executable, str(project / "model/train.py"), "--n-estimators", "100", "--max-depth", "6"],
                   env=env, check=True, capture_output=True)
    trained = time.monotonic()
    server = subprocess.Popen([sys.executable, "-m", "lambda_pipeline.adapters.local.model_server",
                               "--model-dir", str(model_dir), "--code-dir", str(project / "model"),
                               "--program", "inference.py"], stdout=subprocess.PIPE, cwd=str(REPO))
    try:
        port = json.loads(server.stdout.readline())["port"]  # type: ignore[union-attr]
        wait_ping(port)
        served = time.monotonic()
    finally:
        server.terminate()
        server.wait()
    return trained - started, served - trained


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from infrastructure.local.service import LocalService
    from sagebuild.project import copy_example

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "wine"
        copy_example("wine", project)
        scratch = Path(tmp) / "direct"
        trains, serves, builds = [], [], []
        started = time.monotonic()
        service = LocalService(str(project))
        service.start()
        engine_start = time.monotonic() - started
        try:
            for i in range(args.runs):
                train_s, serve_s = direct_run(project, scratch)
                trains.append(train_s)
                serves.append(serve_s)
                t0 = time.monotonic()
                build = service.builds.start(f"bench run {i + 1}", source="bench")
                while not build.done:
                    time.sleep(0.02)
                    build = service.builds.get(build.id)
                if build.status != "SUCCEEDED":
                    raise SystemExit(f"build failed: {build.failed_step}: {build.failure_reason}")
                builds.append(time.monotonic() - t0)
                print(f"run {i + 1}: direct train {train_s:.2f}s + serve {serve_s:.2f}s; local build {builds[-1]:.2f}s",
                      file=sys.stderr)
        finally:
            service.close()
    direct = statistics.median(t + s for t, s in zip(trains, serves))
    local = statistics.median(builds)
    print(json.dumps({"runs": args.runs, "local_build_seconds": round(local, 3),
                      "direct_train_seconds": round(statistics.median(trains), 3),
                      "direct_serve_start_seconds": round(statistics.median(serves), 3),
                      "direct_seconds": round(direct, 3), "overhead_seconds": round(local - direct, 3),
                      "ratio": round(local / direct, 3), "engine_start_seconds": round(engine_start, 3),
                      "target_ratio": 1.15}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
