"""Notifications reach real receivers: an HTTP webhook, an SMTP server, SNS -> SQS (moto)."""
import hashlib
import hmac
import json
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from aiosmtpd.controller import Controller
from moto import mock_aws

from lambda_pipeline.adapters.aws import SnsNotifier
from lambda_pipeline.adapters.local.notifier import ConfiguredNotifier
from lambda_pipeline.config import validate_config

REASON = "ValueError: colonne « alcool » vide (exit code 1)"
PAYLOAD = {"build_id": "b1", "build_number": 7, "pipeline": "wine-classifier", "version": "v7", "status": "FAILED",
           "triggers": [{"source": "git", "reason": "commit abc12345 on main: tune", "details": {}}],
           "duration_seconds": 12.5, "metrics": {}, "gate": {"metric": None}, "failed_step": "Train",
           "failure_reason": REASON, "live": {"version": "v6", "endpoint": "wine-classifier"}}


class Receiver:
    """A webhook receiver that fails the first ``fail`` requests with HTTP 500."""

    def __init__(self, fail=0):
        self.received, self.fail = [], fail
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail > 0:
                    receiver.fail -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self):
        self.server.shutdown()


def notifier_for(sinks, sleeps=None):
    config = validate_config({"pipeline": "wine-classifier", "notifications": sinks})
    return ConfiguredNotifier(lambda: config, sleep=(sleeps.append if sleeps is not None else lambda s: None))


def test_webhook_gets_signed_json_with_the_reason_intact(monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    receiver = Receiver()
    try:
        notifier = notifier_for([{"type": "webhook", "url": receiver.url, "secret_env": "HOOK_SECRET"}])
        notifier.publish("build.failed", PAYLOAD)
        assert notifier.flush()
        (headers, body), = receiver.received
        expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert headers["x-sagebuild-signature-256"] == expected
        assert headers["x-sagebuild-event"] == "build.failed"
        message = json.loads(body)
        assert message["event"] == "build.failed" and message["payload"]["failure_reason"] == REASON
        assert message["payload"]["triggers"][0]["reason"] == "commit abc12345 on main: tune"
    finally:
        receiver.close()


def test_a_failing_sink_is_retried_with_back_off_then_given_up_and_others_still_deliver():
    flaky, good = Receiver(fail=2), Receiver()
    sleeps = []
    try:
        notifier = notifier_for([{"type": "webhook", "url": flaky.url, "retries": 3},
                                 {"type": "webhook", "url": "http://127.0.0.1:9/nothing", "retries": 2},
                                 {"type": "webhook", "url": good.url}], sleeps)
        notifier.publish("build.failed", PAYLOAD)  # never raises, never blocks
        assert notifier.flush()
        assert len(flaky.received) == 1 and len(good.received) == 1
        assert sleeps == [0.5, 1.0, 0.5, 1.0]  # two retries for the flaky one, two for the dead one
        assert notifier.failures == [("webhook", "build.failed", notifier.failures[0][2])]
    finally:
        flaky.close()
        good.close()


def test_each_sink_gets_only_its_events():
    receiver = Receiver()
    try:
        notifier = notifier_for([{"type": "webhook", "url": receiver.url, "events": ["build.failed"]}])
        notifier.publish("build.started", {**PAYLOAD, "status": "RUNNING", "failure_reason": None})
        notifier.publish("build.failed", PAYLOAD)
        assert notifier.flush()
        assert [json.loads(b)["event"] for _, b in receiver.received] == ["build.failed"]
    finally:
        receiver.close()


def test_config_names_bad_sinks():
    from lambda_pipeline.errors import ConfigError
    with pytest.raises(ConfigError, match=r"'notifications\[0\].url' is required for a webhook sink"):
        validate_config({"pipeline": "p-1", "notifications": [{"type": "webhook"}]})
    with pytest.raises(ConfigError, match="unknown events"):
        validate_config({"pipeline": "p-1", "notifications": [{"type": "console", "events": ["build.exploded"]}]})


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


def test_email_has_plain_text_and_html_and_the_reason():
    import socket
    with socket.socket() as probe:  # aiosmtpd needs a concrete port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        notifier = notifier_for([{"type": "email", "smtp_host": "127.0.0.1", "smtp_port": port,
                                  "from": "sagebuild@example.org", "to": ["ml-team@example.org"]}])
        notifier.publish("build.failed", PAYLOAD)
        assert notifier.flush()
        (envelope,) = inbox.messages
        assert envelope.rcpt_tos == ["ml-team@example.org"]
        message = message_from_bytes(envelope.content)
        assert message["Subject"].startswith("[SageBuild] wine-classifier build #7 failed (v7) at Train")
        parts = {part.get_content_type(): part.get_payload(decode=True).decode() for part in message.walk()
                 if not part.is_multipart()}
        assert REASON in parts["text/plain"] and "Trigger: git: commit abc12345 on main: tune" in parts["text/plain"]
        assert "colonne « alcool » vide" in parts["text/html"] and "<table>" in parts["text/html"]
    finally:
        controller.stop()


def test_sns_status_topic_carries_the_same_payload_and_filterable_attributes():
    with mock_aws():
        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="sagebuild-status")["TopicArn"]
        queues = {}
        for name, policy in (("all", None), ("failures", {"event": ["build.failed", "build.gate_failed"]})):
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            attributes = {"FilterPolicy": json.dumps(policy)} if policy else {}
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=attributes)
            queues[name] = url
        notifier = SnsNotifier(topic, boto3_client=sns)
        notifier.publish("build.started", {**PAYLOAD, "status": "RUNNING", "failure_reason": None})
        notifier.publish("build.failed", PAYLOAD)

        def events(queue):
            messages = sqs.receive_message(QueueUrl=queues[queue], MaxNumberOfMessages=10).get("Messages", [])
            return [json.loads(json.loads(m["Body"])["Message"]) for m in messages]

        everything = events("all")
        assert [m["event"] for m in everything] == ["build.started", "build.failed"]
        assert everything[1]["payload"]["failure_reason"] == REASON
        assert [m["event"] for m in events("failures")] == ["build.failed"]
