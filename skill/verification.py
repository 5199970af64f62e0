"""Verify that an HTTP request really comes from Alexa, as Alexa requires of HTTPS skills.

``ask-sdk-webservice-support`` does not import on this machine's OpenSSL, so this is ours,
built on ``cryptography``: the certificate URL rules, the chain (valid now, SAN
``echo-api.amazon.com``, up to a trusted root), the SHA-256 signature of the raw body, and
the request timestamp within 150 seconds. Any failure raises :class:`VerificationError`,
which the web app answers with HTTP 400.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import posixpath
import threading
import time
import urllib.parse
import urllib.request
from typing import Callable, Mapping

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError as _ChainError

__all__ = ["AlexaRequestVerifier", "VerificationError", "check_cert_url", "load_default_roots"]

ALEXA_SAN = "echo-api.amazon.com"
MAX_SKEW_SECONDS = 150
_MAX_CHAIN_BYTES = 64 * 1024


class VerificationError(ValueError):
    """The request failed one of Alexa's checks; the message says which."""


def check_cert_url(url: str) -> None:
    """Alexa's rules for ``SignatureCertChainUrl`` (after normalising ``..``)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "https":
        raise VerificationError("certificate URL must use https")
    if (parts.hostname or "").lower() != "s3.amazonaws.com":
        raise VerificationError("certificate URL host must be s3.amazonaws.com")
    path = posixpath.normpath(parts.path) if parts.path else ""
    if not path.startswith("/echo.api/"):
        raise VerificationError("certificate URL path must start with /echo.api/")
    try:
        port = parts.port
    except ValueError:
        raise VerificationError("certificate URL port is not a number") from None
    if port not in (None, 443):
        raise VerificationError("certificate URL port must be 443")


def load_default_roots() -> list[x509.Certificate]:
    """The trusted roots: certifi's bundle (what requests and pip trust)."""
    import certifi
    with open(certifi.where(), "rb") as fh:
        return x509.load_pem_x509_certificates(fh.read())


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read(_MAX_CHAIN_BYTES + 1)


class AlexaRequestVerifier:
    """Checks one request's headers and raw body.

    Args:
        trusted_roots: root certificates a chain must end in (default: certifi's).
        fetch: downloads the PEM chain at a certificate URL (injectable for tests).
        clock: current time in seconds.
    """

    def __init__(self, trusted_roots: list[x509.Certificate] | None = None,
                 fetch: Callable[[str], bytes] = _fetch, clock: Callable[[], float] = time.time) -> None:
        self._roots = trusted_roots if trusted_roots is not None else load_default_roots()
        self._fetch = fetch
        self._clock = clock
        self._cache: dict[str, tuple[x509.Certificate, float]] = {}
        self._lock = threading.Lock()

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise VerificationError unless the request is a fresh, genuine Alexa request."""
        lower = {k.lower(): v for k, v in headers.items()}
        url = lower.get("signaturecertchainurl")
        signature = lower.get("signature-256")
        if not url:
            raise VerificationError("missing SignatureCertChainUrl header")
        if not signature:
            raise VerificationError("missing Signature-256 header")
        check_cert_url(url)
        leaf = self._leaf(url)
        try:
            raw_signature = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise VerificationError("Signature-256 is not base64") from None
        key = leaf.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise VerificationError("the signing certificate does not hold an RSA key")
        try:
            key.verify(raw_signature, body, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise VerificationError("the body does not match its signature") from None
        self._check_timestamp(body)

    def _leaf(self, url: str) -> x509.Certificate:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(url)
        if cached and cached[1] > now:
            return cached[0]
        try:
            pem = self._fetch(url)
        except Exception as exc:
            raise VerificationError(f"cannot download the certificate chain: {exc}") from None
        if len(pem) > _MAX_CHAIN_BYTES:
            raise VerificationError("the certificate chain is too large")
        try:
            chain = x509.load_pem_x509_certificates(pem)
        except ValueError:
            raise VerificationError("the certificate chain is not PEM") from None
        leaf, intermediates = chain[0], chain[1:]
        when = dt.datetime.fromtimestamp(now, dt.timezone.utc)
        if not (leaf.not_valid_before_utc <= when <= leaf.not_valid_after_utc):
            raise VerificationError("the signing certificate is expired or not yet valid")
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            raise VerificationError("the signing certificate has no subject alternative names") from None
        if ALEXA_SAN not in san.get_values_for_type(x509.DNSName):
            raise VerificationError(f"the signing certificate is not for {ALEXA_SAN}")
        try:
            verifier = (PolicyBuilder().store(Store(self._roots)).time(when)
                        .build_server_verifier(x509.DNSName(ALEXA_SAN)))
            verifier.verify(leaf, intermediates)
        except (_ChainError, ValueError) as exc:
            raise VerificationError(f"the certificate chain does not verify: {exc}") from None
        with self._lock:
            self._cache[url] = (leaf, min(leaf.not_valid_after_utc.timestamp(), now + 3600))
        return leaf

    def _check_timestamp(self, body: bytes) -> None:
        try:
            stamp = json.loads(body)["request"]["timestamp"]
            when = dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except (ValueError, KeyError, TypeError):
            raise VerificationError("the request has no valid timestamp") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        if abs(self._clock() - when.timestamp()) > MAX_SKEW_SECONDS:
            raise VerificationError("the request timestamp is more than 150 seconds from now")
