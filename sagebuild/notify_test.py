"""``sagebuild notify-test alexa``: send one test notification through the project's alexa sink and
print what Amazon answered, to check the client id, secret, stage, region and user ids."""
from __future__ import annotations

import argparse
import time
from typing import Any

from lambda_pipeline.adapters.local.config_store import FileConfigStore
from lambda_pipeline.adapters.local.notifier import alexa_sink
from lambda_pipeline.alexa_events import DeliveryFailed
from lambda_pipeline.errors import ConfigError

from .context import Context

__all__ = ["cmd_notify_test", "add_notify_test_command"]

TEST_EVENT = "notify.test"


def cmd_notify_test(ctx: Context, args: argparse.Namespace) -> int:
    """Exit 0 if Amazon accepted the event for every recipient, 1 if not, 2 on a config problem."""
    config = FileConfigStore(str(ctx.project)).load()
    sinks = [s for s in config["notifications"] if s.get("type") == args.kind]
    if not sinks:
        raise ConfigError(f"no {args.kind} sink in 'notifications' of {ctx.project / 'sagebuild.json'}: add "
                          '{"type": "alexa", "client_id_env": "ALEXA_CLIENT_ID", "client_secret_env": '
                          '"ALEXA_CLIENT_SECRET"} (see the README, "Alexa tells you when it\'s done")')
    failed = False
    for spec in sinks:
        try:
            sink = alexa_sink(spec, config, sleep=time.sleep)
            ctx.ui.say(f"Sending a test notification to {sink.api_url} "
                       f"({'Multicast' if sink.multicast else 'Unicast to ' + ', '.join(sink.users) or 'nobody'})")
            payload = {"build_id": f"test{int(time.time())}", "pipeline": config["pipeline"]}
            for answer in sink.send(TEST_EVENT, payload):
                ctx.ui.say(f"  {answer.audience}: Amazon answered HTTP {answer.status} after {answer.attempts} "
                           f"attempt(s){': ' + answer.body if answer.body else ''} (referenceId {answer.reference_id})")
        except DeliveryFailed as exc:
            ctx.ui.warn(f"  not delivered: {exc}")
            failed = True
    if not failed:
        ctx.ui.say("Amazon accepted it. A user who allowed notifications for the skill sees the yellow light; "
                   "\"Alexa, what are my notifications?\" reads it.")
    return 1 if failed else 0


def add_notify_test_command(sub: Any) -> None:
    p = sub.add_parser("notify-test", help="send one test notification through a sink and print the answer")
    p.add_argument("kind", choices=("alexa",), help="which sink (alexa)")
    p.set_defaults(func=cmd_notify_test)
