"""Malformed and random envelopes: never an unhandled exception, never a 500."""
import json
import logging
import urllib.error
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import skill.app
from lambda_pipeline.adapters.local.ledger import SqliteLedger
from lambda_pipeline.adapters.local.ledger_builds import LedgerBuilds
from lambda_pipeline.config import LOCAL_SKILL_ID
from skill import lambda_handler
from skill.app import SkillApp
from skill.envelopes import intent_request, launch_request
from skill.settings import SkillSettings
from skill.webapp import SkillServer

GENERIC_400 = "the request could not be handled"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)

INTENTS = ["BuildStatusIntent", "StartBuildIntent", "StopBuildIntent", "BuildDetailsIntent", "LiveModelIntent",
           "ListBuildsIntent", "AMAZON.YesIntent", "AMAZON.NoIntent", "AMAZON.HelpIntent", "Unknown"]


@st.composite
def mutated_envelopes(draw):
    """A valid envelope with one field, at any depth, replaced by random JSON (or removed)."""
    base = draw(st.sampled_from(["intent", "launch"]))
    envelope = (intent_request(draw(st.sampled_from(INTENTS)), {"BuildNumber": draw(st.text(max_size=5))})
                if base == "intent" else launch_request())
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                paths.append(path + [key])
                walk(value, path + [key])

    walk(envelope, [])
    path = draw(st.sampled_from(paths))
    parent = envelope
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()):
        parent[path[-1]] = draw(json_values)
    else:
        del parent[path[-1]]
    return envelope


@pytest.fixture(scope="module")
def configured(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SAGEBUILD_ENGINE_URL", "http://127.0.0.1:9")
    mp.setenv("SKILL_ID", LOCAL_SKILL_ID)
    mp.setattr(skill.app, "_default", None)
    yield
    mp.undo()


@pytest.fixture(scope="module")
def http_skill(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    SqliteLedger(str(folder / "ledger.db")).close()
    server = SkillServer(SkillApp(LedgerBuilds(str(folder / "ledger.db"), str(folder)), SkillSettings()), verifier=None)
    server.start()
    yield server
    server.stop()


def _well_formed(response):
    assert isinstance(response, dict) and response["version"] == "1.0" and isinstance(response["response"], dict)


class _Unexpected(logging.Handler):
    """Collects the errors the skill logs when something it did not anticipate happens."""

    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.records = []

    def emit(self, record):
        if "unexpected" in record.getMessage() or "outside its handlers" in record.getMessage():
            self.records.append(record.getMessage())


@pytest.fixture(scope="module")
def unexpected():
    handler = _Unexpected()
    logging.getLogger("skill").addHandler(handler)
    yield handler
    logging.getLogger("skill").removeHandler(handler)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=json_values | mutated_envelopes())
def test_lambda_handler_always_answers(configured, unexpected, event):
    _well_formed(lambda_handler(event, None))
    assert unexpected.records == []  # malformed input is recognised as such, not caught by accident


def post(server, body: bytes):
    req = urllib.request.Request(server.url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=json_values | mutated_envelopes())
def test_http_endpoint_never_answers_500(http_skill, event):
    status, body = post(http_skill, json.dumps(event).encode())
    assert status in (200, 400), body
    if status == 200:
        _well_formed(body)
    else:
        assert body["error"] != GENERIC_400  # a specific reason, not the last-resort net


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_http_endpoint_rejects_garbage_bytes(http_skill, raw):
    status, _ = post(http_skill, raw)
    assert status == 400
