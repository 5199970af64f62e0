"""Launch messages (POST /launch locally, the webhook Lambda on AWS): HMAC-SHA256 verified, GitHub compatible."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from typing import Any

__all__ = ["LaunchRejected", "verify_signature", "launch_trigger"]

logger = logging.getLogger(__name__)


class LaunchRejected(PermissionError):
    """The launch request is unsigned, badly signed, or the endpoint has no secret (HTTP 401)."""


def launch_secret(config: dict[str, Any]) -> str | None:
    launch = config["triggers"]["launch"]
    return launch.get("secret") or os.environ.get(launch["secret_env"]) or None


def verify_signature(secret: str | None, body: bytes, header: str | None) -> None:
    """``X-Hub-Signature-256: sha256=<hex of HMAC-SHA256(secret, body)>``, compared in constant time."""
    if not secret:
        raise LaunchRejected("the launch endpoint has no secret: set the variable named by "
                             "triggers.launch.secret_env (default SAGEBUILD_LAUNCH_SECRET)")
    if not header:
        raise LaunchRejected("missing X-Hub-Signature-256 header")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, header.strip()):
        raise LaunchRejected("X-Hub-Signature-256 does not match the body")


def launch_trigger(body: bytes, event: str | None, branch: str) -> tuple[str, str, dict[str, Any]] | None:
    """(source, reason, details) from a verified launch body, or None if it asks for no build.

    GitHub ``push`` events start a build only for the configured branch; ``ping`` starts none;
    any other JSON object may carry ``reason`` (and ``source``).
    """
    try:
        payload = json.loads(body or b"{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"the launch body is not JSON: {exc.msg}") from None
    if not isinstance(payload, dict):
        raise ValueError("the launch body must be a JSON object")
    if event == "ping":
        return None
    if event == "push":
        ref = str(payload.get("ref", ""))
        pushed = ref.removeprefix("refs/heads/")
        if pushed != branch:
            return None
        head = payload.get("head_commit") or {}
        commit = str(head.get("id") or payload.get("after") or "")
        message = str(head.get("message") or "").splitlines()[0] if head.get("message") else ""
        return "git", f"push of {commit[:8]} to {pushed}: {message}".strip(), {
            "commit": commit, "branch": pushed, "message": message,
            "repository": (payload.get("repository") or {}).get("full_name")}
    reason = str(payload.get("reason") or "launch message")
    return str(payload.get("source") or "launch"), reason, {k: v for k, v in payload.items() if k not in ("reason",)}
