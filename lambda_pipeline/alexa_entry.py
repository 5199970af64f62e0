"""The AWS side of the alexa sink: a Lambda subscribed to the status topic.

The steps publish every build event to SNS (``SnsNotifier``) and return at once, so Alexa's
retries and back-off never slow a build or fail it. SNS invokes this function asynchronously;
it reads the pipeline config (SSM), and for each ``alexa`` sink that wants the event, sends it
with the same :class:`~lambda_pipeline.alexa_events.AlexaSink` the local engine uses. The client
id comes from the stack (``SAGEBUILD_ALEXA_CLIENT_ID``), the users from its ``AllowedAlexaUserIds``
(``ALLOWED_USER_IDS``, as the skill function gets them) and the config's ``skill.allowed_user_ids``; the client secret lives in Secrets Manager
(``SAGEBUILD_ALEXA_CLIENT_SECRET``, its ARN) and is read once per container. Who opted out is read
from the ledger (the skill records it there).

It never raises on a failed delivery (that would make Lambda run it again and repeat the
notification to the people who did get it); failures are logged with Amazon's answer.
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Callable

from .alexa_events import DEFAULT_EVENTS, DeliveryFailed, sink_from_spec
from .audience import Audience

__all__ = ["notify", "client_secret", "forget_cached"]

logger = logging.getLogger(__name__)

_secret: str | None = None
_ports: dict[str, Any] = {}


def client_secret(env: dict[str, str] | None = None, session: Any = None) -> str:
    """The Alexa client secret from Secrets Manager, read once per container."""
    global _secret
    if _secret is None:
        from .adapters.aws.boto import client
        env = dict(os.environ if env is None else env)
        secrets = client("secretsmanager", boto3_session=session)
        _secret = secrets.get_secret_value(SecretId=env["SAGEBUILD_ALEXA_CLIENT_SECRET"])["SecretString"]
    return _secret


def forget_cached() -> None:
    """Drop the secret and adapters this container cached (tests, and a rotated secret)."""
    global _secret
    _secret = None
    _ports.clear()


def _adapters(env: dict[str, str], session: Any) -> tuple[Any, Any]:
    if not _ports:
        from .adapters.aws.dynamodb_ledger import DynamoDBLedger
        from .adapters.aws.stores import SsmConfigStore
        _ports["config"] = SsmConfigStore(env["SAGEBUILD_CONFIG_PARAMETER"], boto3_session=session)
        _ports["ledger"] = DynamoDBLedger(env["SAGEBUILD_LEDGER_TABLE"], boto3_session=session)
    return _ports["config"], _ports["ledger"]


def _events_of(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for record in event.get("Records") or []:
        if record.get("EventSource") != "aws:sns":
            continue
        try:
            message = json.loads(record["Sns"]["Message"])
            found.append((str(message["event"]), dict(message["payload"])))
        except (KeyError, TypeError, ValueError):
            logger.warning("not a SageBuild status message", extra={"message": str(record.get("Sns"))[:300]})
    return found


def _allowed_users(env: dict[str, str], config: dict[str, Any]) -> list[str]:
    """The stack's AllowedAlexaUserIds (what the skill function allows), then the config's own."""
    users = [u.strip() for u in env.get("ALLOWED_USER_IDS", "").split(",") if u.strip()]
    return list(dict.fromkeys(users + list(config["skill"]["allowed_user_ids"])))


def notify(event: dict[str, Any], context: Any = None, *, env: dict[str, str] | None = None, session: Any = None,
           sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """SNS -> Alexa. Returns what was delivered and what failed (for the logs and the tests)."""
    env = dict(os.environ if env is None else env)
    delivered: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    items = _events_of(event)
    if not items:
        return {"delivered": delivered, "failed": failed}
    config_store, ledger = _adapters(env, session)
    config = config_store.load()
    sinks = [s for s in config["notifications"] if s.get("type") == "alexa"]
    audience = Audience(ledger)
    for name, payload in items:
        for spec in sinks:
            if name not in (spec.get("events") or DEFAULT_EVENTS):
                continue
            try:
                client_id = env.get("SAGEBUILD_ALEXA_CLIENT_ID") or ""
                if not client_id:
                    raise DeliveryFailed("the stack has no Alexa client id (parameter AlexaClientId)")
                users = [u for u in _allowed_users(env, config) if not audience.opted_out(u)]
                # 5 s per call: four attempts per user stay well inside the function's 120 s
                sink = sink_from_spec(spec, users, client_id, client_secret(env, session), sleep=sleep, timeout=5.0)
                answers = sink.send(name, payload)
                delivered += [{"event": name, "status": a.status, "reference": a.reference_id} for a in answers]
            except DeliveryFailed as exc:
                logger.error("alexa notification not delivered", extra={"event": name, "error": str(exc)})
                failed.append({"event": name, "error": str(exc)})
            except Exception as exc:  # Secrets Manager or the ledger failing: logged, never retried by Lambda
                logger.exception("alexa notification crashed", extra={"event": name})
                failed.append({"event": name, "error": f"{type(exc).__name__}: {exc}"})
    return {"delivered": delivered, "failed": failed}
