"""Request verification through the real Flask app, with a locally generated certificate chain.

A root CA, an intermediate and an ``echo-api.amazon.com`` leaf are generated here; the root is the
only trust anchor and a fake fetcher serves the chain, so no test touches the network.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from flask.testing import FlaskClient
from skill_testkit import SKILL_ID, Alexa, check_response, spoken

from skill import verification
from skill.services import SkillServices
from skill.verification import SignatureVerifier, VerificationException, validate_cert_url
from skill.webapp import create_app

CERT_URL = "https://s3.amazonaws.com/echo.api/echo-api-cert-test.pem"
NOW = datetime.now(UTC)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: str,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    san: str | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - timedelta(days=1))
        .not_valid_after(not_after or NOW + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(san or "echo-api.amazon.com")]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class Pki:
    root: x509.Certificate
    intermediate: x509.Certificate
    leaf_key: rsa.RSAPrivateKey
    chains: dict[str, bytes]  # cert URL -> PEM served for it


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@pytest.fixture(scope="module")
def pki() -> Pki:
    root_key, inter_key, leaf_key = _key(), _key(), _key()
    root = _cert("Test Root CA", root_key, "Test Root CA", root_key, ca=True)
    inter = _cert("Test Intermediate", inter_key, "Test Root CA", root_key, ca=True)
    leaf = _cert("echo-api.amazon.com", leaf_key, "Test Intermediate", inter_key, ca=False)
    expired = _cert(
        "echo-api.amazon.com",
        leaf_key,
        "Test Intermediate",
        inter_key,
        ca=False,
        not_before=NOW - timedelta(days=60),
        not_after=NOW - timedelta(days=1),
    )
    wrong_san = _cert(
        "example.com", leaf_key, "Test Intermediate", inter_key, ca=False, san="example.com"
    )
    rogue_key = _key()
    rogue_root = _cert("Rogue Root", rogue_key, "Rogue Root", rogue_key, ca=True)
    rogue_inter = _cert("Test Intermediate", inter_key, "Rogue Root", rogue_key, ca=True)
    base = "https://s3.amazonaws.com/echo.api/"
    return Pki(
        root=root,
        intermediate=inter,
        leaf_key=leaf_key,
        chains={
            CERT_URL: _pem(leaf, inter),
            base + "expired.pem": _pem(expired, inter),
            base + "wrong-san.pem": _pem(wrong_san, inter),
            base + "untrusted.pem": _pem(leaf, rogue_inter, rogue_root),
            base + "garbage.pem": b"not a certificate",
        },
    )


class FakeFetcher:
    def __init__(self, chains: dict[str, bytes]) -> None:
        self.chains = chains
        self.calls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        if url not in self.chains:
            raise VerificationException(f"404 for {url}")
        return self.chains[url]


@pytest.fixture
def fetcher(pki: Pki) -> FakeFetcher:
    return FakeFetcher(pki.chains)


@pytest.fixture
def client(services: SkillServices, pki: Pki, fetcher: FakeFetcher) -> FlaskClient:
    verifier = SignatureVerifier(trust_roots=[pki.root], fetch=fetcher)
    app = create_app(services=services, signature_verifier=verifier)
    app.testing = True
    return app.test_client()


def _body(timestamp: datetime | None = None, skill_id: str = SKILL_ID) -> bytes:
    alexa = Alexa(lambda event, context: {})
    alexa.skill_id = skill_id
    alexa.timestamp = timestamp
    return json.dumps(alexa.envelope({"type": "LaunchRequest"})).encode()


def _sign(body: bytes, key: rsa.RSAPrivateKey) -> str:
    return base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()


def _post(
    client: FlaskClient, body: bytes, signature: str | None, url: str | None = CERT_URL
) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Signature-256"] = signature
    if url is not None:
        headers["SignatureCertChainUrl"] = url
    return client.post("/alexa", data=body, headers=headers)


def test_a_correctly_signed_request_is_answered(client: FlaskClient, pki: Pki) -> None:
    body = _body()
    reply = _post(client, body, _sign(body, pki.leaf_key))
    assert reply.status_code == 200, reply.data
    out = reply.get_json()
    check_response(out)
    assert spoken(out).startswith("Welcome to Bedtime Stories.")


def test_the_chain_is_downloaded_once(client: FlaskClient, pki: Pki, fetcher: FakeFetcher) -> None:
    for _ in range(3):
        body = _body()
        assert _post(client, body, _sign(body, pki.leaf_key)).status_code == 200
    assert fetcher.calls == [CERT_URL]


def test_forged_signature_is_refused(client: FlaskClient) -> None:
    body = _body()
    assert _post(client, body, _sign(body, _key())).status_code == 400


def test_body_changed_after_signing_is_refused(client: FlaskClient, pki: Pki) -> None:
    body = _body()
    signature = _sign(body, pki.leaf_key)
    tampered = body.replace(b"en-US", b"en-GB")
    assert _post(client, tampered, signature).status_code == 400


@pytest.mark.parametrize(
    "name", ["expired.pem", "wrong-san.pem", "untrusted.pem", "garbage.pem", "missing.pem"]
)
def test_bad_certificate_chains_are_refused(client: FlaskClient, pki: Pki, name: str) -> None:
    body = _body()
    url = "https://s3.amazonaws.com/echo.api/" + name
    assert _post(client, body, _sign(body, pki.leaf_key), url=url).status_code == 400


def test_wrong_cert_url_host_is_refused_without_download(
    client: FlaskClient, pki: Pki, fetcher: FakeFetcher
) -> None:
    body = _body()
    url = "https://evil.example.com/echo.api/echo-api-cert-test.pem"
    fetcher.chains[url] = pki.chains[CERT_URL]
    assert _post(client, body, _sign(body, pki.leaf_key), url=url).status_code == 400
    assert fetcher.calls == []


def test_stale_timestamp_is_refused(client: FlaskClient, pki: Pki) -> None:
    body = _body(timestamp=datetime.now(UTC) - timedelta(seconds=200))
    assert _post(client, body, _sign(body, pki.leaf_key)).status_code == 400


def test_timestamp_within_tolerance_is_accepted(client: FlaskClient, pki: Pki) -> None:
    body = _body(timestamp=datetime.now(UTC) - timedelta(seconds=100))
    assert _post(client, body, _sign(body, pki.leaf_key)).status_code == 200


def test_wrong_skill_id_is_refused(client: FlaskClient, pki: Pki) -> None:
    body = _body(skill_id="amzn1.ask.skill.someone-else")
    assert _post(client, body, _sign(body, pki.leaf_key)).status_code == 400


@pytest.mark.parametrize(
    ("signature", "url"), [(None, CERT_URL), ("c2ln", None), ("***not base64***", CERT_URL)]
)
def test_missing_or_malformed_headers_are_refused(
    client: FlaskClient, signature: str | None, url: str | None
) -> None:
    assert _post(client, _body(), signature, url=url).status_code == 400


def test_verification_can_be_switched_off_for_local_development(
    services: SkillServices, caplog: pytest.LogCaptureFixture
) -> None:
    import dataclasses

    services.settings = dataclasses.replace(services.settings, verify_requests=False)
    with caplog.at_level("WARNING"):
        app = create_app(services=services)
    assert "verification is OFF" in caplog.text
    reply = app.test_client().post("/alexa", data=_body(), content_type="application/json")
    assert reply.status_code == 200


def test_verification_is_on_by_default(services: SkillServices) -> None:
    """Without injected test roots, an unsigned request is refused: nothing is skipped."""
    app = create_app(services=services)
    reply = app.test_client().post("/alexa", data=_body(), content_type="application/json")
    assert reply.status_code == 400


@pytest.mark.parametrize(
    "url",
    [
        "https://s3.amazonaws.com/echo.api/echo-api-cert.pem",
        "https://s3.amazonaws.com:443/echo.api/echo-api-cert.pem",
        "https://s3.amazonaws.com/echo.api/../echo.api/echo-api-cert.pem",
        "HTTPS://S3.AMAZONAWS.COM/echo.api/echo-api-cert.pem",
    ],
)
def test_amazon_documented_valid_cert_urls(url: str) -> None:
    validate_cert_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://s3.amazonaws.com/echo.api/echo-api-cert.pem",
        "https://notamazon.com/echo.api/echo-api-cert.pem",
        "https://s3.amazonaws.com/EcHo.aPi/echo-api-cert.pem",
        "https://s3.amazonaws.com/invalid.path/echo-api-cert.pem",
        "https://s3.amazonaws.com:563/echo.api/echo-api-cert.pem",
        "https://s3.amazonaws.com/echo.api/../other/echo-api-cert.pem",
        "https://user:pw@s3.amazonaws.com/echo.api/echo-api-cert.pem",
        "https://s3.amazonaws.com:notaport/echo.api/x.pem",
    ],
)
def test_amazon_documented_invalid_cert_urls(url: str) -> None:
    with pytest.raises(VerificationException):
        validate_cert_url(url)


def test_certificate_download_has_a_bounded_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    class Response:
        def __enter__(self) -> Response:
            return self

        def __exit__(self, *args: object) -> None:
            return None

        def read(self, limit: int) -> bytes:
            seen["limit"] = limit
            return b"x" * 10

    def fake_urlopen(url: str, timeout: float | None = None, context: Any = None) -> Response:
        seen["timeout"] = timeout
        return Response()

    monkeypatch.setattr(verification.urllib.request, "urlopen", fake_urlopen)
    assert verification.fetch_certificate_chain(CERT_URL) == b"x" * 10
    assert 0 < seen["timeout"] <= 5
    assert seen["limit"] == verification.MAX_CHAIN_BYTES + 1


def test_certificate_download_failure_is_a_verification_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def timeout(*args: Any, **kwargs: Any) -> None:
        raise TimeoutError("timed out")

    monkeypatch.setattr(verification.urllib.request, "urlopen", timeout)
    with pytest.raises(VerificationException, match="Could not download"):
        verification.fetch_certificate_chain(CERT_URL)


def test_certifi_roots_load() -> None:
    assert len(verification.certifi_roots()) > 50


def test_sdk_adapter_imports_without_a_usable_oscrypto() -> None:
    """The import chain works in a fresh interpreter; the placeholder does not leak."""
    code = (
        "import sys, skill.webapp, flask_ask_sdk.skill_adapter as a, "
        "ask_sdk_webservice_support.verifier as v; "
        "mod = sys.modules.get('certvalidator'); "
        "leak = mod is not None and getattr(mod, '__file__', None) is None; "
        "sys.exit(1 if leak else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_the_sdk_certvalidator_placeholder_refuses_to_work() -> None:
    with pytest.raises(RuntimeError, match="SignatureVerifier"):
        verification._CertvalidatorUnavailable(b"cert")


def test_clock_injection_checks_dates(pki: Pki, fetcher: FakeFetcher) -> None:
    later: Callable[[], datetime] = lambda: NOW + timedelta(days=365)  # noqa: E731
    verifier = SignatureVerifier(trust_roots=[pki.root], fetch=fetcher, clock=later)
    body = _body()
    headers = {"SignatureCertChainUrl": CERT_URL, "Signature-256": _sign(body, pki.leaf_key)}
    with pytest.raises(VerificationException, match="not valid now"):
        verifier.verify(headers, body.decode(), None)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("expired.pem", "not valid now"),
        ("wrong-san.pem", "not issued to echo-api.amazon.com"),
        ("untrusted.pem", "not trusted"),
        ("garbage.pem", "not valid PEM"),
    ],
)
def test_bad_chains_fail_for_the_right_reason(
    pki: Pki, fetcher: FakeFetcher, name: str, reason: str
) -> None:
    verifier = SignatureVerifier(trust_roots=[pki.root], fetch=fetcher)
    body = _body()
    headers = {
        "SignatureCertChainUrl": "https://s3.amazonaws.com/echo.api/" + name,
        "Signature-256": _sign(body, pki.leaf_key),
    }
    with pytest.raises(VerificationException, match=reason):
        verifier.verify(headers, body.decode(), None)


@pytest.mark.parametrize(
    "url",
    [
        "https://s3.amazonaws.com/echo.api/%2e%2e/other/echo-api-cert.pem",
        "https://s3.amazonaws.com/echo.api/echo-api-cert.pem?x=1",
        "https://s3.amazonaws.com/echo.api/echo-api-cert.pem#frag",
        "https://s3.amazonaws.com/echo.api/echo api cert.pem",
        "https://s3.amazonaws.com/echo.api/échо-api-cert.pem",
        "https://s3.amazonaws.com/echo.api/" + "a" * 600 + ".pem",
    ],
)
def test_strict_cert_urls(url: str) -> None:
    with pytest.raises(VerificationException):
        validate_cert_url(url)


def test_cheap_checks_come_before_any_download(
    client: FlaskClient, pki: Pki, fetcher: FakeFetcher
) -> None:
    body = _body(timestamp=datetime.now(UTC) - timedelta(seconds=400))
    assert _post(client, body, _sign(body, pki.leaf_key)).status_code == 400  # stale
    other = _body(skill_id="amzn1.ask.skill.someone-else")
    assert _post(client, other, _sign(other, pki.leaf_key)).status_code == 400
    fresh = _body()
    assert _post(client, fresh, "***not base64***").status_code == 400
    assert fetcher.calls == []


def test_a_failed_chain_is_remembered_briefly(pki: Pki, fetcher: FakeFetcher) -> None:
    clock = [0.0]
    verifier = SignatureVerifier(
        trust_roots=[pki.root], fetch=fetcher, failure_seconds=60, monotonic=lambda: clock[0]
    )
    body = _body()
    url = "https://s3.amazonaws.com/echo.api/untrusted.pem"
    headers = {"SignatureCertChainUrl": url, "Signature-256": _sign(body, pki.leaf_key)}
    for _ in range(3):
        with pytest.raises(VerificationException, match="not trusted"):
            verifier.verify(headers, body.decode(), None)
    assert fetcher.calls == [url]
    clock[0] = 61.0
    with pytest.raises(VerificationException):
        verifier.verify(headers, body.decode(), None)
    assert fetcher.calls == [url, url]
