"""The per-user registry of running local engines: how `say`, `skill serve`, the CLI and the client
find every pipeline on this machine from any folder.

Every `sagebuild up` registers its pipeline (name, project folder, API address, PID, API token)
in ``$SAGEBUILD_HOME/pipelines.json`` (default ``~/.sagebuild``), and removes it when it stops.
An engine killed with ``kill -9`` cannot remove itself: readers drop entries whose PID is gone
(or belongs to another program now) and, on request, entries whose API does not answer. The
file holds API tokens, so it is readable by its user alone (0600, its folder 0700), as
Jupyter's runtime files are. Writes are atomic and serialized with ``flock``.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

__all__ = ["RegisteredPipeline", "PipelineRegistry", "registry_home", "write_private"]

logger = logging.getLogger(__name__)


def registry_home() -> Path:
    """``$SAGEBUILD_HOME`` or ``~/.sagebuild``: SageBuild's per-user folder."""
    return Path(os.environ.get("SAGEBUILD_HOME") or Path.home() / ".sagebuild")


def write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically to a file only its owner can read (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


@dataclass(frozen=True)
class RegisteredPipeline:
    """One running engine: the pipeline it serves and how to reach it."""

    name: str
    project: str
    url: str
    pid: int
    token: str
    started_at: float


def _pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class PipelineRegistry:
    """The registry file of one user.

    Args:
        home: the per-user folder (default :func:`registry_home`).
    """

    def __init__(self, home: Path | None = None) -> None:
        self.home = Path(home) if home is not None else registry_home()
        self.path = self.home / "pipelines.json"

    def register(self, entry: RegisteredPipeline) -> None:
        """Add (or replace) the engine of ``entry.project``."""
        with self._locked() as entries:
            entries[:] = [e for e in entries if e.project != entry.project and _pid_alive(e.pid)] + [entry]

    def unregister(self, project: str, pid: int | None = None) -> None:
        """Remove the engine of ``project`` (only if it is ``pid``'s, when given)."""
        with self._locked() as entries:
            entries[:] = [e for e in entries if not (e.project == project and (pid is None or e.pid == pid))]

    def entries(self, check_health: bool = False, timeout: float = 0.5) -> list[RegisteredPipeline]:
        """The engines running now, by pipeline name; dead ones are dropped from the file.

        ``check_health`` also asks each engine's ``/v1/health`` (with its token) and drops those
        that do not answer as themselves."""
        with self._locked() as entries:
            alive = [e for e in entries if _pid_alive(e.pid) and (not check_health or self._healthy(e, timeout))]
            entries[:] = alive
        return sorted(alive, key=lambda e: (e.name, e.project))

    def find(self, name: str) -> list[RegisteredPipeline]:
        """The running engines of pipeline ``name`` (several projects may share a name)."""
        return [e for e in self.entries() if e.name == name]

    @staticmethod
    def _healthy(entry: RegisteredPipeline, timeout: float) -> bool:
        request = urllib.request.Request(entry.url.rstrip("/") + "/v1/health",
                                         headers={"Authorization": f"Bearer {entry.token}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                return bool(json.loads(resp.read()).get("pid") == entry.pid)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[RegisteredPipeline]]:
        """The entries under an exclusive lock; written back (0600) if the caller changed them."""
        self.home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.home, 0o700)
        with open(self.home / "pipelines.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = self._read()
            before = list(entries)
            yield entries
            if entries != before:
                write_private(self.path, json.dumps({"pipelines": [asdict(e) for e in entries],
                                                     "written_at": time.time()}, indent=2))

    def _read(self) -> list[RegisteredPipeline]:
        try:
            data = json.loads(self.path.read_text())
            return [RegisteredPipeline(**e) for e in data.get("pipelines", [])]
        except FileNotFoundError:
            return []
        except (ValueError, TypeError, AttributeError) as exc:
            logger.warning("pipeline registry unreadable; starting it afresh", extra={"error": str(exc)})
            return []
