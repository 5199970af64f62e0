"""Per-project Python environments for local training and serving, built with ``uv``.

SageMaker runs a script in its framework's container, with the code folder's ``requirements.txt``
installed first. Locally a project gets a virtual environment holding the same: the framework's
packages at the chosen version, plus the requirements. Environments are cached under
``$SAGEBUILD_ENV_DIR`` (default ``~/.cache/sagebuild/envs``), one folder per hash of what they
hold, so builds reuse them and a changed ``requirements.txt`` makes a new one.

When SageBuild's own environment already carries the framework at that version (the newest
version of sklearn and xgboost), the new environment is *layered* over it: a ``.pth`` file puts
SageBuild's site-packages after the environment's own, and only the requirements SageBuild's
environment does not already satisfy are installed into the new one. SageBuild's own
environment is read, never written.
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ...errors import SageBuildError
from ...frameworks import FrameworkChoice
from .processes import die_with_parent

__all__ = ["EnvironmentFailed", "LocalEnvironments", "ProjectEnvironment", "default_env_dir"]

_FORMAT = 1  # bump when the layout of an environment changes: old ones are simply not reused
_READY = "sagebuild-env.json"
_LAYER_PTH = "_sagebuild_base.pth"
_CONTAINER_LIBS = str(Path(__file__).resolve().parent / "container_libs")
_PACKAGE = Path(__file__).resolve().parents[2]  # lambda_pipeline


class EnvironmentFailed(SageBuildError):
    """The project's environment could not be built (the installer's own error in the message)."""


def default_env_dir() -> Path:
    """``$SAGEBUILD_ENV_DIR``, else ``~/.cache/sagebuild/envs``."""
    return Path(os.environ.get("SAGEBUILD_ENV_DIR") or Path.home() / ".cache" / "sagebuild" / "envs")


@dataclass(frozen=True)
class ProjectEnvironment:
    """A ready environment: its interpreter, and a folder that makes the model server importable."""

    path: Path
    key: str
    layered: bool
    framework: str = "sklearn"

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    @property
    def library_path(self) -> str:
        """What the framework's container adds to a script's imports (its own libraries), or ''."""
        return _CONTAINER_LIBS if self.framework == "xgboost" else ""

    @property
    def server_path(self) -> str:
        """The model server's import path: a folder holding only ``lambda_pipeline`` (a link), so
        the rest of SageBuild's site-packages does not leak into an isolated environment, and the
        container's libraries."""
        return os.pathsep.join(filter(None, [str(self.path / "sagebuild-server"), self.library_path]))


def _base_site() -> str:
    return sysconfig.get_paths()["purelib"]


@functools.lru_cache(maxsize=1)
def _installed() -> dict[str, str]:
    """Distributions of SageBuild's own environment (name -> version), installed from an index."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if not name or dist.read_text("direct_url.json"):
            continue
        found.setdefault(canonicalize_name(name), dist.version)
    return found


def _base_satisfies(packages: tuple[str, ...], installed: dict[str, str]) -> bool:
    for text in packages:
        req = Requirement(text)
        version = installed.get(canonicalize_name(req.name))
        if version is None or (req.specifier and not req.specifier.contains(version, prereleases=True)):
            return False
    return True


def _uv() -> str:
    try:
        import uv
        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if not found:
            raise EnvironmentFailed("uv is not installed (it is a dependency of sagebuild: pip install uv)") from None
        return found


class LocalEnvironments:
    """Builds and caches project environments.

    Args:
        root: the cache folder (default :func:`default_env_dir`, read when an environment is needed).
        base_python: the interpreter environments are made from (SageBuild's own).
    """

    def __init__(self, root: Path | None = None, base_python: str = sys.executable) -> None:
        self._root = root
        self._base_python = base_python

    @property
    def root(self) -> Path:
        return self._root or default_env_dir()

    def key(self, choice: FrameworkChoice, requirements: str) -> str:
        layered = self._layered(choice)
        ident = {"format": _FORMAT, "framework": choice.framework, "version": choice.version,
                 "packages": list(choice.packages), "requirements": _normalise(requirements),
                 "python": sys.version.split()[0], "base": _base_site() if layered else None,
                 "server": str(_PACKAGE)}  # the lambda_pipeline its model server imports (a link to it)
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]

    def prepare(self, choice: FrameworkChoice, requirements: str, log: Callable[[str], None],
                cwd: str | None = None, on_process: Callable[[subprocess.Popen[bytes] | None], None] | None = None
                ) -> ProjectEnvironment:
        """The environment for ``choice`` plus ``requirements`` (text of a requirements.txt), built
        if it is not cached. ``log`` gets the install log a line at a time; ``cwd`` is where
        relative paths in the requirements point; ``on_process`` is told of each installer
        process (so a stop can end it).

        Raises:
            EnvironmentFailed: the framework does not run locally, or the installer failed (its
                own error line in the message).
        """
        if not choice.runs_locally:
            raise EnvironmentFailed(f"framework {choice.framework!r} does not run locally (its SageMaker image "
                                    "runs on AWS): use 'custom' with a requirements.txt to train it here")
        started = time.monotonic()
        key = self.key(choice, requirements)
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / key
        what = f"{choice.framework} {choice.version}".strip()
        n_reqs = len(_requirement_lines(requirements))
        with open(self.root / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (path / _READY).is_file():
                log(f"sagebuild-env: reusing environment {key} ({what}, {n_reqs} requirement(s)) at {path}")
                return ProjectEnvironment(path, key, self._layered(choice), choice.framework)
            log(f"sagebuild-env: building environment {key} ({what}, {n_reqs} requirement(s)) at {path}")
            if path.exists():
                shutil.rmtree(path)  # an earlier build died half-way
            try:
                env = self._build(path, key, choice, requirements, log, cwd, on_process)
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise
        log(f"sagebuild-env: environment {key} ready in {time.monotonic() - started:.2f} s")
        return env

    # -- building -------------------------------------------------------------------------
    def _layered(self, choice: FrameworkChoice) -> bool:
        return choice.framework != "custom" and _base_satisfies(choice.packages, _installed())

    def _build(self, path: Path, key: str, choice: FrameworkChoice, requirements: str, log: Callable[[str], None],
               cwd: str | None, on_process: Callable[[subprocess.Popen[bytes] | None], None] | None
               ) -> ProjectEnvironment:
        uv = _uv()
        layered = self._layered(choice)
        run = _Runner(uv, log, cwd, on_process)
        run(["venv", "--python", self._base_python, "--no-project", str(path)])
        python = str(path / "bin" / "python")
        site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   check=True, capture_output=True, text=True).stdout.strip())
        if layered:
            # addsitedir (not a bare path line) so the base's own .pth files (editable installs) apply too
            (site / _LAYER_PTH).write_text(f"import site; site.addsitedir({_base_site()!r})\n")
            log(f"sagebuild-env: {choice.framework} {choice.version} comes from SageBuild's environment "
                f"({', '.join(choice.packages)}): layered over {_base_site()}")
        elif choice.packages:
            run(["pip", "install", "--python", python, *choice.packages])
        lines = _requirement_lines(requirements)
        if lines:
            with tempfile.TemporaryDirectory() as tmp:
                # the code folder's own file where it is that text: its `-r other.txt` lines resolve there
                req_file = Path(cwd) / "requirements.txt" if cwd else Path(tmp) / "missing"
                if not req_file.is_file() or req_file.read_text() != requirements:
                    req_file = Path(tmp) / "requirements.txt"
                    req_file.write_text(requirements)
                if layered:
                    self._install_over_base(run, python, req_file, Path(tmp), log)
                else:
                    run(["pip", "install", "--python", python, "-r", str(req_file)])
        server = path / "sagebuild-server"
        server.mkdir()
        (server / "lambda_pipeline").symlink_to(_PACKAGE, target_is_directory=True)
        (path / _READY).write_text(json.dumps({"key": key, "framework": choice.framework, "version": choice.version,
                                               "packages": list(choice.packages), "requirements": requirements,
                                               "layered": layered, "created_at": time.time()}, indent=2))
        return ProjectEnvironment(path, key, layered, choice.framework)

    def _install_over_base(self, run: "_Runner", python: str, req_file: Path, tmp: Path,
                           log: Callable[[str], None]) -> None:
        """Resolve preferring SageBuild's installed versions; install only what it does not already hold."""
        installed = _installed()
        resolved = tmp / "resolved.txt"
        resolved.write_text("".join(f"{name}=={version}\n" for name, version in sorted(installed.items())))
        run(["pip", "compile", str(req_file), "-o", str(resolved), "--python", python, "--no-header",
             "--no-annotate", "--quiet"])
        needed = []
        for line in resolved.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            match = re.match(r"^([A-Za-z0-9._-]+)==([^\s;]+)", line)
            if match and installed.get(canonicalize_name(match.group(1))) == match.group(2):
                continue
            needed.append(line)
        if not needed:
            log("sagebuild-env: every requirement is already in SageBuild's environment")
            return
        install = tmp / "install.txt"
        install.write_text("\n".join(needed) + "\n")
        run(["pip", "install", "--python", python, "--no-deps", "-r", str(install)])


class _Runner:
    """Runs uv, streaming its output to the log; a failure raises with uv's error line."""

    def __init__(self, uv: str, log: Callable[[str], None], cwd: str | None,
                 on_process: Callable[[subprocess.Popen[bytes] | None], None] | None) -> None:
        self._uv, self._log, self._cwd, self._on_process = uv, log, cwd, on_process

    def __call__(self, args: list[str]) -> None:
        env = dict(os.environ, NO_COLOR="1", UV_NO_PROGRESS="1")
        env.pop("VIRTUAL_ENV", None)
        self._log(f"sagebuild-env: $ uv {' '.join(args)}")
        proc = subprocess.Popen([self._uv, *args], cwd=self._cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=die_with_parent)
        if self._on_process:
            self._on_process(proc)
        lines = []
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            text = raw.decode("utf-8", "replace").rstrip()
            lines.append(text)
            self._log(text)
        rc = proc.wait()
        if self._on_process:
            self._on_process(None)
        if rc != 0:
            raise EnvironmentFailed(f"installing the environment failed: {_error_line(lines, rc)}")


def _error_line(lines: list[str], rc: int) -> str:
    """uv's ``error:`` line with its ``cause:`` when it gives one."""
    for i, line in enumerate(lines):
        if line.startswith("error:"):
            message = line
            if i + 1 < len(lines) and lines[i + 1].strip().startswith("cause:"):
                message += " (" + lines[i + 1].strip() + ")"
            return message[:900]
    if rc < 0:
        return f"the installer was killed by signal {-rc}"
    tail = [line for line in lines if line.strip()]
    return (tail[-1] if tail else f"uv exited with code {rc}")[:900]


def _requirement_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _normalise(text: str) -> str:
    return "\n".join(_requirement_lines(text))



def model_environment_spec(artifact_path: str) -> tuple[FrameworkChoice, str] | None:
    """What a model was trained with (the ``environment.json`` beside its ``model.tar.gz``): the
    framework and the requirements text. None for a model trained without an environment."""
    from ...frameworks import resolve_framework
    sidecar = Path(artifact_path).with_name("environment.json")
    if not sidecar.is_file():
        return None
    data = json.loads(sidecar.read_text())
    return resolve_framework(data["framework"], data["version"] or None), data.get("requirements", "")
