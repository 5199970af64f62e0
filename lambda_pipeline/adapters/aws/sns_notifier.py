"""Notifier port on SNS: the status topic gets the same payload as the local sinks.

Message attributes (``event``, ``pipeline``, ``status``) let subscribers filter, e.g. an e-mail
subscription with a filter policy ``{"event": ["build.failed", "build.gate_failed"]}``.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from ...errors import TransientError
from ...notifications import subject, text_body
from .boto import client

__all__ = ["SnsNotifier"]

logger = logging.getLogger(__name__)


class SnsNotifier:
    """Publishes build events to one SNS topic.

    Args:
        topic_arn: the status topic.
        boto3_client: an SNS client (tests pass a moto or Stubber one).
        boto3_session: used to build the client when none is given.
    """

    def __init__(self, topic_arn: str, boto3_client: Any = None, boto3_session: Any = None) -> None:
        self._sns = client("sns", boto3_client, boto3_session)
        self.topic_arn = topic_arn

    def publish(self, event: str, payload: dict[str, Any]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError
        message = {"default": json.dumps({"event": event, "payload": payload}, default=str),
                   "email": text_body(event, payload)}
        attributes = {"event": {"DataType": "String", "StringValue": event}}
        for key in ("pipeline", "status"):
            if payload.get(key):
                attributes[key] = {"DataType": "String", "StringValue": str(payload[key])}
        try:
            self._sns.publish(TopicArn=self.topic_arn, Subject=subject(event, payload), Message=json.dumps(message),
                              MessageStructure="json", MessageAttributes=attributes)
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"SNS publish to {self.topic_arn} failed: {exc}") from exc
