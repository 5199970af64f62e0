"""What a project environment costs a build: first build (environment made) against later ones (reused).

Runs the wine sample through the embedded engine with an empty environment cache (a temporary
SAGEBUILD_ENV_DIR): build 1 makes the layered sklearn environment, build 2 reuses it; then a
requirements.txt (one small package from PyPI) is added: build 3 makes a new environment and
installs it with uv, build 4 reuses that. For each: the Train step's wall time and the time the
environment took (from the job log). The last line is one JSON object.
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SAGEBUILD_ENV_DIR"] = str(Path(tmp) / "envs")
        from infrastructure.local.service import LocalService
        from sagebuild.project import copy_example
        project = Path(tmp) / "wine"
        copy_example("wine", project)
        service = LocalService(str(project))
        service.start()
        results = []
        try:
            for i, requirements in enumerate((None, None, "humanize==4.17.0\n", None)):
                if requirements:
                    (project / "model" / "requirements.txt").write_text(requirements)
                build = service.builds.start(f"bench {i + 1}", source="bench")
                while not build.done:
                    time.sleep(0.02)
                    build = service.builds.get(build.id)
                if build.status != "SUCCEEDED":
                    raise SystemExit(f"build failed: {build.failed_step}: {build.failure_reason}")
                log = service.builds.logs(build.id).text
                made = re.search(r"environment \S+ ready in ([0-9.]+) s", log)
                train = next(s for s in build.steps if s.name == "Train")
                results.append({"build": i + 1, "environment": "made" if made else "reused",
                                "environment_seconds": float(made.group(1)) if made else 0.0,
                                "train_step_seconds": round(train.duration or 0.0, 3),
                                "requirements": bool((project / "model" / "requirements.txt").exists())})
                print(results[-1], file=sys.stderr)
        finally:
            service.close()
    print(json.dumps({"builds": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
