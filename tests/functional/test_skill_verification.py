"""Alexa request verification over HTTP: a CA and leaf made here; every failed check is a 400."""
import base64
import datetime as dt
import json
import urllib.error
import urllib.request

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from lambda_pipeline.adapters.local.ledger import SqliteLedger
from lambda_pipeline.adapters.local.ledger_builds import LedgerBuilds
from skill.app import SkillApp
from skill.envelopes import intent_request
from skill.settings import SkillSettings
from skill.verification import AlexaRequestVerifier, VerificationError, check_cert_url
from skill.webapp import SkillServer
from tests.pki import NOW, make_ca, make_leaf, pem

CERT_URL = "https://s3.amazonaws.com/echo.api/echo-api-cert-test.pem"


@pytest.fixture(scope="module")
def pki():
    ca_key, ca = make_ca()
    leaf_key, leaf = make_leaf(ca_key, ca)
    other_ca_key, other_ca = make_ca("Someone Else")
    return {"ca": ca, "ca_key": ca_key, "leaf": leaf, "leaf_key": leaf_key, "other_ca": other_ca,
            "other_ca_key": other_ca_key}


def sign(key, body: bytes) -> str:
    return base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()


@pytest.fixture
def server(pki, tmp_path):
    chains = {CERT_URL: pem(pki["leaf"], pki["ca"])}
    verifier = AlexaRequestVerifier(trusted_roots=[pki["ca"]], fetch=lambda url: chains[url])
    SqliteLedger(str(tmp_path / "ledger.db")).close()
    app = SkillApp(LedgerBuilds(str(tmp_path / "ledger.db"), str(tmp_path / "jobs")), SkillSettings(pipeline="wine"))
    srv = SkillServer(app, verifier)
    srv.start()
    srv.chains = chains
    yield srv
    srv.stop()


def post(server, body: bytes, headers: dict):
    req = urllib.request.Request(server.url, data=body, method="POST", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def good_body(**kwargs) -> bytes:
    return json.dumps(intent_request("BuildStatusIntent", **kwargs)).encode()


def test_a_genuine_request_is_answered(server, pki):
    body = good_body()
    status, answer = post(server, body, {"SignatureCertChainUrl": CERT_URL, "Signature-256": sign(pki["leaf_key"], body)})
    assert status == 200
    assert "no builds yet" in answer["response"]["outputSpeech"]["ssml"]


@pytest.mark.parametrize("case", ["tampered", "missing_url", "missing_signature", "bad_base64", "wrong_key"])
def test_signature_problems_are_400(server, pki, case):
    body = good_body()
    headers = {"SignatureCertChainUrl": CERT_URL, "Signature-256": sign(pki["leaf_key"], body)}
    if case == "tampered":
        body = body.replace(b"BuildStatusIntent", b"StopBuildIntent")
    elif case == "missing_url":
        headers.pop("SignatureCertChainUrl")
    elif case == "missing_signature":
        headers.pop("Signature-256")
    elif case == "bad_base64":
        headers["Signature-256"] = "%%%not-base64%%%"
    elif case == "wrong_key":
        headers["Signature-256"] = sign(pki["ca_key"], body)
    status, answer = post(server, body, headers)
    assert status == 400 and "verification failed" in answer["error"]


@pytest.mark.parametrize("url", [
    "http://s3.amazonaws.com/echo.api/echo-api-cert-test.pem",        # scheme
    "https://notamazon.com/echo.api/echo-api-cert-test.pem",          # host
    "https://s3.amazonaws.com/EcHo.aPi/echo-api-cert-test.pem",       # path is case-sensitive
    "https://s3.amazonaws.com/invalid.path/echo-api-cert-test.pem",   # path
    "https://s3.amazonaws.com/echo.api/../invalid.path/cert.pem",     # path after normalising ..
    "https://s3.amazonaws.com:563/echo.api/echo-api-cert-test.pem",   # port
])
def test_bad_certificate_urls_are_400(server, pki, url):
    body = good_body()
    status, answer = post(server, body, {"SignatureCertChainUrl": url, "Signature-256": sign(pki["leaf_key"], body)})
    assert status == 400 and "certificate URL" in answer["error"]


@pytest.mark.parametrize("url", ["HTTPS://S3.AMAZONAWS.COM/echo.api/echo-api-cert-test.pem",
                                 "https://s3.amazonaws.com:443/echo.api/../echo.api/echo-api-cert-test.pem"])
def test_certificate_url_rules_allow_what_alexa_allows(url):
    check_cert_url(url)


@pytest.mark.parametrize("case", ["expired", "not_yet_valid", "wrong_san", "untrusted"])
def test_certificate_problems_are_400(server, pki, case):
    if case == "expired":
        key, leaf = make_leaf(pki["ca_key"], pki["ca"], not_before=NOW - dt.timedelta(days=10),
                              not_after=NOW - dt.timedelta(days=1))
    elif case == "not_yet_valid":
        key, leaf = make_leaf(pki["ca_key"], pki["ca"], not_before=NOW + dt.timedelta(days=1),
                              not_after=NOW + dt.timedelta(days=5))
    elif case == "wrong_san":
        key, leaf = make_leaf(pki["ca_key"], pki["ca"], san="evil.example.com")
    else:
        key, leaf = make_leaf(pki["other_ca_key"], pki["other_ca"])
    url = f"https://s3.amazonaws.com/echo.api/{case}.pem"
    server.chains[url] = pem(leaf, pki["ca"])
    body = good_body()
    status, answer = post(server, body, {"SignatureCertChainUrl": url, "Signature-256": sign(key, body)})
    assert status == 400, answer
    assert "certificate" in answer["error"]


def test_a_stale_timestamp_is_400(server, pki):
    envelope = intent_request("BuildStatusIntent")
    envelope["request"]["timestamp"] = (NOW - dt.timedelta(seconds=200)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = json.dumps(envelope).encode()
    status, answer = post(server, body, {"SignatureCertChainUrl": CERT_URL, "Signature-256": sign(pki["leaf_key"], body)})
    assert status == 400 and "150 seconds" in answer["error"]


def test_wrong_skill_id_and_bad_envelopes_are_400_even_when_signed(server, pki):
    for body in (good_body(skill_id="amzn1.ask.skill.someone-else"), b"{broken json",
                 json.dumps({"request": {"type": "IntentRequest"}}).encode()):
        status, _ = post(server, body, {"SignatureCertChainUrl": CERT_URL, "Signature-256": sign(pki["leaf_key"], body)})
        assert status == 400


def test_session_application_id_is_checked_too(server, pki):
    envelope = intent_request("BuildStatusIntent")
    envelope["session"]["application"]["applicationId"] = "amzn1.ask.skill.someone-else"
    body = json.dumps(envelope).encode()
    status, answer = post(server, body, {"SignatureCertChainUrl": CERT_URL, "Signature-256": sign(pki["leaf_key"], body)})
    assert status == 400 and "not this skill's" in answer["error"]


def test_the_chain_is_downloaded_once_and_cached(pki):
    calls = []

    def fetch(url):
        calls.append(url)
        return pem(pki["leaf"], pki["ca"])

    verifier = AlexaRequestVerifier(trusted_roots=[pki["ca"]], fetch=fetch)
    for _ in range(3):
        body = good_body()
        verifier.verify({"SignatureCertChainUrl": CERT_URL, "Signature-256": sign(pki["leaf_key"], body)}, body)
    assert calls == [CERT_URL]
    with pytest.raises(VerificationError, match="does not match"):
        verifier.verify({"SignatureCertChainUrl": CERT_URL, "Signature-256": sign(pki["leaf_key"], b"x")}, good_body())
