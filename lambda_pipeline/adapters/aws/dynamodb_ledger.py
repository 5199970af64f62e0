"""Ledger port on one DynamoDB table (pk, sk): the same semantics as the SQLite ledger.

Each record is a JSON document in ``doc`` with a ``ver`` for optimistic locking, so concurrent
writers (a step handler and a user's stop) never lose each other's changes. Build numbers come
from an atomic counter. Layout:

    COUNTER / builds | deploy#<endpoint>        atomic counters
    BUILD / <number, zero-padded>               the build            BUILDID / <id> -> number
    STEPS#<build id> / <step name>              per-step times       TRIGGERS#<build id> / <time>#<n>
    MODEL / <version>                           the registry         DEPLOY#<endpoint> / <seq>
    ENDPOINTS / <endpoint>                      endpoints seen       STATE / <key>  trigger state
"""
from __future__ import annotations

import builtins
import json
import time
import uuid
from typing import Any, Callable

from ...errors import BuildNotFound, TransientError
from ...model import Build, BuildStatus, StepRecord
from ...registry import previous_good_version
from .boto import client

__all__ = ["DynamoDBLedger"]

_ACTIVE = (BuildStatus.QUEUED, BuildStatus.RUNNING)


class DynamoDBLedger:
    """Ledger port on DynamoDB.

    Args:
        table_name: the stack's ledger table (pk and sk, both strings).
        clock: current time in seconds (injectable for tests).
    """

    def __init__(self, table_name: str, clock: Callable[[], float] = time.time, boto3_client: Any = None,
                 boto3_session: Any = None) -> None:
        self._db = client("dynamodb", boto3_client, boto3_session)
        self._table = table_name
        self._clock = clock

    # -- documents ------------------------------------------------------------------------
    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self._db.get_item(TableName=self._table, Key={"pk": {"S": pk}, "sk": {"S": sk}},
                                 ConsistentRead=True).get("Item")
        return json.loads(item["doc"]["S"]) if item else None

    def _put(self, pk: str, sk: str, doc: dict[str, Any], expect_ver: int | None = None) -> bool:
        ver = (expect_ver or 0) + 1
        item = {"pk": {"S": pk}, "sk": {"S": sk}, "doc": {"S": json.dumps(doc)}, "ver": {"N": str(ver)}}
        kwargs: dict[str, Any] = {"TableName": self._table, "Item": item}
        if expect_ver is None:
            kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            kwargs["ConditionExpression"] = "ver = :v"
            kwargs["ExpressionAttributeValues"] = {":v": {"N": str(expect_ver)}}
        try:
            self._db.put_item(**kwargs)
            return True
        except self._db.exceptions.ConditionalCheckFailedException:
            return False

    def _update(self, pk: str, sk: str, mutate: Callable[[dict[str, Any]], bool | None]) -> dict[str, Any]:
        """Read, change, write back unless someone wrote in between (then again)."""
        for _ in range(20):
            item = self._db.get_item(TableName=self._table, Key={"pk": {"S": pk}, "sk": {"S": sk}},
                                     ConsistentRead=True).get("Item")
            if item is None:
                raise BuildNotFound(f"no ledger record {pk}/{sk}")
            doc, ver = json.loads(item["doc"]["S"]), int(item["ver"]["N"])
            if mutate(doc) is False:
                return doc
            if self._put(pk, sk, doc, expect_ver=ver):
                return doc
        raise TransientError(f"the ledger record {pk}/{sk} kept changing; try again")

    def _query(self, pk: str, newest_first: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self._table, "KeyConditionExpression": "pk = :p",
                                  "ExpressionAttributeValues": {":p": {"S": pk}}, "ScanIndexForward": not newest_first,
                                  "ConsistentRead": True}
        while True:
            page = self._db.query(**kwargs)
            docs += [json.loads(i["doc"]["S"]) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page or (limit is not None and len(docs) >= limit):
                return docs[:limit] if limit is not None else docs
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _count(self, name: str) -> int:
        answer = self._db.update_item(TableName=self._table, Key={"pk": {"S": "COUNTER"}, "sk": {"S": name}},
                                      UpdateExpression="ADD n :one", ExpressionAttributeValues={":one": {"N": "1"}},
                                      ReturnValues="UPDATED_NEW")
        return int(answer["Attributes"]["n"]["N"])

    # -- builds ---------------------------------------------------------------------------
    def create_build(self, pipeline: str, trigger_source: str, reason: str,
                     hyperparameters: dict[str, Any] | None = None, status: str = BuildStatus.QUEUED) -> Build:
        number = self._count("builds")
        build_id = "b" + uuid.uuid4().hex[:11]
        doc = {"id": build_id, "number": number, "pipeline": pipeline, "status": status,
               "trigger_source": trigger_source, "reason": reason, "created_at": self._clock(),
               "hyperparameters": hyperparameters or {}, "metrics": {}}
        self._put("BUILD", f"{number:010d}", doc)
        self._put("BUILDID", build_id, {"number": number})
        return self.get_build(build_id)

    def _number_of(self, ref: str | int | None) -> int:
        if ref is None or ref == "latest":
            latest = self._query("BUILD", newest_first=True, limit=1)
            if not latest:
                raise BuildNotFound("there are no builds yet: start one with `sagebuild start`")
            return int(latest[0]["number"])
        text = str(ref).lstrip("#")
        if text.isdigit():
            return int(text)
        found = self._get("BUILDID", text)
        if found is None:
            raise BuildNotFound(f"no build {text!r}: give a build number (e.g. 3) or id")
        return int(found["number"])

    def get_build(self, ref: str | int | None = None) -> Build:
        number = self._number_of(ref)
        doc = self._get("BUILD", f"{number:010d}")
        if doc is None:
            raise BuildNotFound(f"no build {str(ref).lstrip('#')!r}: give a build number (e.g. 3) or id")
        return self._to_build(doc)

    def list_builds(self, limit: int = 20, statuses: tuple[str, ...] | None = None) -> builtins.list[Build]:
        docs = self._query("BUILD", newest_first=True)
        if statuses:
            docs = [d for d in docs if d["status"] in statuses]
        return [self._to_build(d) for d in docs[:limit]]

    def update_build(self, build_id: str, **fields: Any) -> None:
        number = self._number_of(build_id)
        self._update("BUILD", f"{number:010d}", lambda doc: doc.update(fields))

    def forget_steps(self, build_id: str, steps: builtins.list[str]) -> None:
        """Drop these step records (a retried build runs them again)."""
        for step in steps:
            self._db.delete_item(TableName=self._table, Key={"pk": {"S": f"STEPS#{build_id}"}, "sk": {"S": step}})

    def begin_step(self, build_id: str, step: str, detail: str | None = None, recovery: bool = False) -> None:
        seq = len(self._query(f"STEPS#{build_id}"))
        doc = {"name": step, "status": "RUNNING", "started_at": self._clock(), "ended_at": None, "detail": detail,
               "seq": seq}
        existing = self._get(f"STEPS#{build_id}", step)
        if existing is None:
            self._put(f"STEPS#{build_id}", step, doc)
        else:
            self._update(f"STEPS#{build_id}", step, lambda d: d.update(doc))
        if not recovery:
            self.update_build(build_id, current_step=step)

    def end_step(self, build_id: str, step: str, status: str = "SUCCEEDED", detail: str | None = None) -> None:
        now = self._clock()

        def close(doc: dict[str, Any]) -> bool | None:
            if doc.get("ended_at") is not None:
                return False
            doc.update(status=status, ended_at=now, detail=detail if detail is not None else doc.get("detail"))
            return None

        if self._get(f"STEPS#{build_id}", step) is not None:
            self._update(f"STEPS#{build_id}", step, close)

    def finish_build(self, build_id: str, status: str, reason: str | None = None,
                     error_type: str | None = None) -> Build:
        """The first terminal status wins; later calls change nothing."""
        now = self._clock()
        number = self._number_of(build_id)
        changed: dict[str, Any] = {}

        def finish(doc: dict[str, Any]) -> bool | None:
            if doc["status"] not in _ACTIVE:
                return False
            failed = doc.get("current_step") if status != BuildStatus.SUCCEEDED else None
            doc.update(status=status, ended_at=now, failure_reason=reason, error_type=error_type, failed_step=failed)
            changed["failed_step"] = failed
            return None

        self._update("BUILD", f"{number:010d}", finish)
        if changed:
            step_status = "SUCCEEDED" if status == BuildStatus.SUCCEEDED else status
            for step in self._query(f"STEPS#{build_id}"):
                if step.get("ended_at") is None or step["name"] == changed["failed_step"]:
                    def close(doc: dict[str, Any]) -> None:
                        doc["status"] = step_status
                        if doc.get("ended_at") is None:
                            doc["ended_at"] = now
                    self._update(f"STEPS#{build_id}", step["name"], close)
        return self.get_build(build_id)

    # -- triggers and state ---------------------------------------------------------------
    def add_triggers(self, build_id: str, triggers: builtins.list[dict[str, Any]]) -> None:
        for trigger in triggers:
            when = trigger.get("received_at") or self._clock()
            self._put(f"TRIGGERS#{build_id}", f"{when:020.6f}#{uuid.uuid4().hex[:8]}",
                      {"source": trigger["source"], "reason": trigger["reason"],
                       "details": trigger.get("details") or {}, "received_at": when})

    def triggers_of(self, build_id: str) -> builtins.list[dict[str, Any]]:
        return self._query(f"TRIGGERS#{build_id}")

    def get_state(self, key: str) -> str | None:
        doc = self._get("STATE", key)
        return doc["value"] if doc else None

    def swap_state(self, key: str, expected: str | None, value: str) -> bool:
        """Compare-and-swap: set ``key`` to ``value`` only if it still holds ``expected`` (None:
        only if unset). Concurrent Lambdas use it to decide which of them may launch a build."""
        if expected is None:
            return self._put("STATE", key, {"value": value})
        item = self._db.get_item(TableName=self._table, Key={"pk": {"S": "STATE"}, "sk": {"S": key}},
                                 ConsistentRead=True).get("Item")
        if item is None or json.loads(item["doc"]["S"])["value"] != expected:
            return False
        return self._put("STATE", key, {"value": value}, expect_ver=int(item["ver"]["N"]))

    def set_state(self, key: str, value: str) -> None:
        if not self._put("STATE", key, {"value": value}):
            self._update("STATE", key, lambda doc: doc.update(value=value))

    # -- registry -------------------------------------------------------------------------
    def register_model(self, version: str, build_id: str, artifact: str, code: str | None,
                       metrics: dict[str, float], config: dict[str, Any], data_refs: dict[str, Any] | None = None,
                       source_ref: dict[str, Any] | None = None) -> None:
        doc = {"version": version, "build_id": build_id, "artifact": artifact, "code": code, "metrics": metrics,
               "config": config, "created_at": self._clock(), "data_refs": data_refs or {},
               "source_ref": source_ref or {}}
        if not self._put("MODEL", version, doc):
            self._update("MODEL", version, lambda d: d.update(doc))

    def get_model(self, version: str) -> dict[str, Any] | None:
        return self._get("MODEL", version)

    def list_models(self, limit: int = 50) -> builtins.list[dict[str, Any]]:
        models = sorted(self._query("MODEL"), key=lambda m: m["created_at"], reverse=True)[:limit]
        for model in models:
            model["deployments"] = self.deployments(version=model["version"])
        return models

    def record_deployment(self, endpoint: str, version: str, endpoint_config: str,
                          build_id: str | None, kind: str = "build") -> None:
        now = self._clock()
        live = self.live_deployment(endpoint)
        if live is not None:
            self._update(f"DEPLOY#{endpoint}", f"{live['id']:010d}", lambda d: d.update(replaced_at=now))
        seq = self._count(f"deploy#{endpoint}")
        self._put(f"DEPLOY#{endpoint}", f"{seq:010d}", {
            "id": seq, "endpoint": endpoint, "version": version, "endpoint_config": endpoint_config,
            "build_id": build_id, "deployed_at": now, "replaced_at": None, "kind": kind, "rolled_back_reason": None})
        self._put("ENDPOINTS", endpoint, {"endpoint": endpoint})

    def mark_rolled_back(self, endpoint: str, endpoint_config: str, reason: str) -> None:
        for row in self._query(f"DEPLOY#{endpoint}"):
            if row["endpoint_config"] == endpoint_config:
                self._update(f"DEPLOY#{endpoint}", f"{row['id']:010d}", lambda d: d.update(rolled_back_reason=reason))

    def deployments(self, endpoint: str | None = None, version: str | None = None,
                    build_id: str | None = None) -> builtins.list[dict[str, Any]]:
        endpoints = [endpoint] if endpoint is not None else [e["endpoint"] for e in self._query("ENDPOINTS")]
        rows = [r for name in endpoints for r in self._query(f"DEPLOY#{name}")]
        rows = [r for r in rows if (version is None or r["version"] == version)
                and (build_id is None or r["build_id"] == build_id)]
        return sorted(rows, key=lambda r: (r["deployed_at"], r["id"]), reverse=True)

    def live_deployment(self, endpoint: str) -> dict[str, Any] | None:
        return next((r for r in self.deployments(endpoint=endpoint) if r["replaced_at"] is None), None)

    def live_at(self, endpoint: str, when: float) -> dict[str, Any] | None:
        return next((r for r in self.deployments(endpoint=endpoint)
                     if r["deployed_at"] <= when and (r["replaced_at"] is None or r["replaced_at"] > when)), None)

    def previous_good_version(self, endpoint: str) -> str | None:
        return previous_good_version(self.deployments(endpoint=endpoint))

    # -- helpers --------------------------------------------------------------------------
    def _to_build(self, doc: dict[str, Any]) -> Build:
        steps = sorted(self._query(f"STEPS#{doc['id']}"), key=lambda s: s["seq"])
        fields: dict[str, Any] = {k: doc.get(k) for k in Build.__dataclass_fields__ if k not in ("steps", "triggers", "runs")}
        fields["metrics"] = fields.get("metrics") or {}
        fields["hyperparameters"] = fields.get("hyperparameters") or {}
        fields["attempt"] = int(fields.get("attempt") or 1)
        return Build(**fields, steps=[StepRecord(name=s["name"], status=s["status"], started_at=s["started_at"],
                                                 ended_at=s.get("ended_at"), detail=s.get("detail")) for s in steps],
                     triggers=self.triggers_of(doc["id"]))
