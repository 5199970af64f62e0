"""Builds from commits: poll a branch (`up`), or be told by a post-commit hook."""
from __future__ import annotations

import logging
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable

__all__ = ["GitWatcher", "head_commit", "install_hook", "HOOK_MARK"]

logger = logging.getLogger(__name__)
HOOK_MARK = "# installed by sagebuild"


def _git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=True,
                          timeout=10).stdout.strip()


def head_commit(repo: str, branch: str | None = None) -> dict[str, str] | None:
    """The commit a branch (default: the checked-out one) points at: id, branch, subject."""
    try:
        ref = f"refs/heads/{branch}" if branch else "HEAD"
        sha = _git(repo, "rev-parse", "--verify", "--quiet", ref + "^{commit}")
        current = branch or _git(repo, "rev-parse", "--abbrev-ref", "HEAD")
        message = _git(repo, "log", "-1", "--format=%s", sha)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, FileNotFoundError):
        return None
    return {"commit": sha, "branch": current, "message": message}


def commit_trigger(commit: dict[str, str]) -> tuple[str, dict[str, Any]]:
    return f"commit {commit['commit'][:8]} on {commit['branch']}: {commit['message']}", dict(commit)


class GitWatcher:
    """Polls ``branch`` in ``repo``; a new commit id submits a git trigger. The last commit seen
    is kept in the ledger, so a commit made while the engine was down still starts a build."""

    def __init__(self, repo: str, branch: str, submit: Callable[..., Any], state: Any, poll_seconds: float) -> None:
        self.repo, self.branch = str(Path(repo).resolve()), branch
        self._submit, self._state, self._poll = submit, state, poll_seconds
        self._key = f"git:{self.repo}:{branch}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="git-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def check(self) -> bool:
        """Look once. True if a new commit was submitted."""
        commit = head_commit(self.repo, self.branch)
        if commit is None:
            return False
        seen = self._state.get_state(self._key)
        self._state.set_state(self._key, commit["commit"])
        if seen is None or seen == commit["commit"]:
            return False  # first look: remember where the branch is, start nothing
        reason, details = commit_trigger(commit)
        self._submit("git", reason, details)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:
                logger.exception("git watch failed; trying again")
            self._stop.wait(self._poll)


def install_hook(repo: str, command: list[str]) -> Path:
    """Write a post-commit hook that runs ``command`` (it tells the engine about the commit).
    An existing hook that is not ours is kept: ours is appended to it."""
    git_dir = Path(_git(repo, "rev-parse", "--absolute-git-dir"))
    hook = git_dir / "hooks" / "post-commit"
    hook.parent.mkdir(parents=True, exist_ok=True)
    quoted = " ".join("'" + part.replace("'", "'\\''") + "'" for part in command)
    ours = f"{HOOK_MARK}: a commit starts a SageBuild build (never blocks the commit)\n{quoted} >/dev/null 2>&1 || true\n"
    if hook.exists() and HOOK_MARK not in hook.read_text():
        hook.write_text(hook.read_text().rstrip("\n") + "\n\n" + ours)
    else:
        hook.write_text("#!/bin/sh\n" + ours)
    hook.chmod(0o755)
    return hook
