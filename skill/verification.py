"""Alexa request verification (signature, cert chain, timestamp, skill id) with ``cryptography``.

Why this module exists
----------------------
``flask_ask_sdk.skill_adapter`` imports ``ask_sdk_webservice_support.verifier``, which imports
``certvalidator`` at module level, which imports ``oscrypto``. oscrypto 1.3.0 (the newest release)
reads libcrypto's version with the regex ``\\d\\.\\d\\.\\d`` and raises ``LibraryNotFoundError`` *at
import* on any OpenSSL whose patch number has two digits (3.0.10 and later, e.g. 3.0.19 here):
wbond/oscrypto#75/#78, fixed on oscrypto master but never released. So merely importing the Flask
adapter fails.

Options weighed:

* ``oscrypto.use_openssl(libcrypto_path, libssl_path)`` only chooses *which* library is loaded; the
  same version regex runs on it, so it helps only when pointed at an old, unpatched OpenSSL 1.1 or
  <= 3.0.9. Pinning a server to a vulnerable libcrypto to please a parser is not a fix.
* Installing oscrypto from a git commit: not a release, not pinnable on PyPI, and it would keep the
  SDK's RequestVerifier, which also compares naive ``datetime.utcnow()`` against certificate dates
  and downloads the chain with no timeout.
* Chosen: verify requests ourselves with ``cryptography`` (already a dependency; the SDK uses it for
  the signature too) and import the SDK's verifier module with ``certvalidator`` replaced, for that
  one import only, by a placeholder that raises if anything ever tries to validate with it. Our
  verifiers (the SDK's ``AbstractVerifier`` interface) run in ``skill/webapp.py`` on the raw body
  and its parsed JSON, before the SDK deserialises anything; the SDK's own RequestVerifier is never
  used, so the placeholder is never called. When a fixed oscrypto is
  installed the real certvalidator imports and no placeholder is used at all. Verification stays on
  by default either way.

What is checked (Amazon's "Host a custom skill as a web service" rules): the SignatureCertChainUrl
(https, host s3.amazonaws.com, port 443, normalised path under /echo.api/), the chain up to a root
in certifi's bundle (path building, signatures, validity dates, ``echo-api.amazon.com`` in the leaf
SAN, via ``cryptography.x509.verification``), the SHA-256 ``Signature-256`` header over the raw
body (the SHA-1 ``Signature`` header is deliberately not supported: Amazon sends both and SHA-1 is
deprecated), a 150-second timestamp tolerance, and the skill id.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import logging
import posixpath
import re
import ssl
import sys
import threading
import time
import types
import urllib.error
import urllib.request
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

logger = logging.getLogger(__name__)

CERT_URL_HEADER = "SignatureCertChainUrl"
SIGNATURE_HEADER = "Signature-256"
CERT_URL_SCHEME = "https"
CERT_URL_HOST = "s3.amazonaws.com"
CERT_URL_PORT = 443
CERT_URL_PATH_PREFIX = "/echo.api/"
ALEXA_SAN = "echo-api.amazon.com"
TIMESTAMP_TOLERANCE_SECONDS = 150.0
FETCH_TIMEOUT_SECONDS = 3.0
MAX_CHAIN_BYTES = 64 * 1024
MAX_CERT_URL_LENGTH = 512
#: Printable ASCII without space, percent, backslash or quotes: all a real cert URL uses.
_CERT_URL_CHARS = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!$&()*+,;=-]+")
#: A chain that failed (download, parse, trust) is not fetched again for this long.
FAILURE_CACHE_SECONDS = 60.0


# --------------------------------------------------------------------------- import guard
class _CertvalidatorUnavailable:
    """Stands in for certvalidator.CertificateValidator; using it is a programming error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(
            "certvalidator is unusable here (oscrypto cannot parse this OpenSSL version); "
            "use skill.verification.SignatureVerifier instead of the SDK's RequestVerifier"
        )


def _placeholder_certvalidator() -> dict[str, types.ModuleType]:
    package = types.ModuleType("certvalidator")
    package.CertificateValidator = _CertvalidatorUnavailable  # type: ignore[attr-defined]
    errors = types.ModuleType("certvalidator.errors")
    errors.ValidationError = type("ValidationError", (Exception,), {})  # type: ignore[attr-defined]
    errors.PathError = type("PathError", (Exception,), {})  # type: ignore[attr-defined]
    package.errors = errors  # type: ignore[attr-defined]
    return {"certvalidator": package, "certvalidator.errors": errors}


@contextmanager
def _modules_replaced(replacements: Mapping[str, types.ModuleType]) -> Iterator[None]:
    saved = {name: sys.modules.get(name) for name in replacements}
    sys.modules.update(replacements)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


@lru_cache(maxsize=1)
def webservice_verifier_module() -> types.ModuleType:
    """``ask_sdk_webservice_support.verifier``, importable even when oscrypto is broken."""
    name = "ask_sdk_webservice_support.verifier"
    try:
        import certvalidator  # noqa: F401  (probe: does oscrypto load on this OpenSSL?)
    except Exception as exc:  # oscrypto raises LibraryNotFoundError, not ImportError
        logger.debug("certvalidator unusable (%s); importing %s with a placeholder", exc, name)
        with _modules_replaced(_placeholder_certvalidator()):
            return importlib.import_module(name)
    return importlib.import_module(name)


_sdk_verifier = webservice_verifier_module()
AbstractVerifier: type = _sdk_verifier.AbstractVerifier
VerificationException: type[Exception] = _sdk_verifier.VerificationException


# --------------------------------------------------------------------------- helpers
def _utcnow() -> datetime:
    return datetime.now(UTC)


def _header(headers: Any, name: str) -> str | None:
    items = headers.items() if hasattr(headers, "items") else headers
    for key, value in items:
        if key.lower() == name.lower():
            return value
    return None


def validate_cert_url(url: str) -> None:
    """Amazon's rules for SignatureCertChainUrl; raises VerificationException naming the problem.

    Stricter than the letter of the rules: only printable ASCII without spaces, no percent
    escapes (``%2e%2e/`` would dodge the path check), no query or fragment.
    """
    if len(url) > MAX_CERT_URL_LENGTH or not _CERT_URL_CHARS.fullmatch(url):
        raise VerificationException("Certificate URL has characters a real one never has")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise VerificationException(f"Certificate URL is malformed: {exc}") from None
    if parts.scheme.lower() != CERT_URL_SCHEME:
        raise VerificationException(f"Certificate URL must use https, not {parts.scheme!r}")
    if (parts.hostname or "").lower() != CERT_URL_HOST:
        raise VerificationException(
            f"Certificate URL host {parts.hostname!r} is not {CERT_URL_HOST}"
        )
    if port is not None and port != CERT_URL_PORT:
        raise VerificationException(f"Certificate URL port {port} is not {CERT_URL_PORT}")
    if parts.username or parts.password:
        raise VerificationException("Certificate URL must not carry credentials")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise VerificationException("Certificate URL must not have a query or fragment")
    path = posixpath.normpath(parts.path) if parts.path else ""
    if not path.startswith(CERT_URL_PATH_PREFIX):  # case-sensitive, after resolving "/../"
        raise VerificationException(f"Certificate URL path {path!r} is not under /echo.api/")


def fetch_certificate_chain(url: str, timeout: float = FETCH_TIMEOUT_SECONDS) -> bytes:
    """Download the PEM chain with a bounded timeout and size."""
    import certifi

    context = ssl.create_default_context(cafile=certifi.where())
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            data = response.read(MAX_CHAIN_BYTES + 1)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise VerificationException(f"Could not download the certificate chain: {exc}") from None
    if len(data) > MAX_CHAIN_BYTES:
        raise VerificationException("Certificate chain download is implausibly large")
    return data


@lru_cache(maxsize=1)
def certifi_roots() -> tuple[x509.Certificate, ...]:
    """Mozilla's root store as shipped by certifi; unparseable entries are skipped, not fatal."""
    import certifi

    roots = []
    marker = "-----END CERTIFICATE-----"
    for block in certifi.contents().split(marker):
        if "-----BEGIN CERTIFICATE-----" not in block:
            continue
        try:
            with warnings.catch_warnings():  # a root that breaks RFC 5280 is skipped, not trusted
                warnings.simplefilter("error", CryptographyDeprecationWarning)
                roots.append(x509.load_pem_x509_certificate((block + marker).encode("ascii")))
        except (ValueError, CryptographyDeprecationWarning):
            continue
    return tuple(roots)


# --------------------------------------------------------------------------- verifiers
class SignatureVerifier(AbstractVerifier):  # type: ignore[misc, valid-type]
    """Checks the request was signed by Amazon: cert URL, chain, SAN, dates, SHA-256 signature.

    Cheap checks (headers, base64, URL form) come before any download. A chain that validated is
    kept until its leaf expires; one that failed is remembered for FAILURE_CACHE_SECONDS, so a
    flood of forged requests naming one URL costs one fetch, not one each.
    """

    def __init__(
        self,
        trust_roots: Sequence[x509.Certificate] | None = None,
        fetch: Callable[[str], bytes] = fetch_certificate_chain,
        clock: Callable[[], datetime] = _utcnow,
        cache_size: int = 8,
        failure_seconds: float = FAILURE_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._roots = tuple(trust_roots) if trust_roots is not None else None
        self._store: Store | None = None
        self._fetch = fetch
        self._clock = clock
        self._monotonic = monotonic
        self._leaves: OrderedDict[str, x509.Certificate] = OrderedDict()
        self._failures: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._cache_size = cache_size
        self._failure_seconds = failure_seconds
        self._lock = threading.Lock()

    def _trust_store(self) -> Store:
        if self._store is None:
            self._store = Store(list(self._roots if self._roots is not None else certifi_roots()))
        return self._store

    def _chain(self, url: str) -> list[x509.Certificate]:
        pem = self._fetch(url)
        try:
            chain = x509.load_pem_x509_certificates(pem)
        except ValueError as exc:
            raise VerificationException(f"Certificate chain is not valid PEM: {exc}") from None
        return chain

    def _remember(self, cache: OrderedDict[str, Any], url: str, value: Any) -> None:
        with self._lock:
            cache[url] = value
            cache.move_to_end(url)
            while len(cache) > self._cache_size:
                cache.popitem(last=False)

    def _cached_leaf(self, url: str) -> x509.Certificate:
        """The validated leaf for a URL: from the cache while valid, else fetched and checked."""
        now = self._clock()
        with self._lock:
            leaf = self._leaves.get(url)
            failure = self._failures.get(url)
        if leaf is not None and leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            return leaf
        if failure is not None and self._monotonic() < failure[0]:
            raise VerificationException(f"{failure[1]} (remembered)")
        try:
            leaf = self._validated_leaf(url, now)
        except VerificationException as exc:
            self._remember(
                self._failures, url, (self._monotonic() + self._failure_seconds, str(exc))
            )
            raise
        self._remember(self._leaves, url, leaf)
        return leaf

    def _validated_leaf(self, url: str, now: datetime) -> x509.Certificate:
        chain = self._chain(url)
        leaf, intermediates = chain[0], chain[1:]
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            raise VerificationException(
                f"Signing certificate is not valid now (valid {leaf.not_valid_before_utc:%Y-%m-%d}"
                f" to {leaf.not_valid_after_utc:%Y-%m-%d})"
            )
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            raise VerificationException(
                "Signing certificate has no subject alternative names"
            ) from None
        if ALEXA_SAN not in san.get_values_for_type(x509.DNSName):
            raise VerificationException(f"Signing certificate is not issued to {ALEXA_SAN}")
        try:
            usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
            if not usage.digital_signature:
                raise VerificationException("Signing certificate may not sign (key usage)")
        except x509.ExtensionNotFound:
            pass
        verifier = (
            PolicyBuilder()
            .store(self._trust_store())
            .time(now)
            .build_server_verifier(x509.DNSName(ALEXA_SAN))
        )
        try:
            verifier.verify(leaf, intermediates)
        except VerificationError as exc:
            raise VerificationException(f"Certificate chain is not trusted: {exc}") from None
        return leaf

    def verify(
        self, headers: Any, serialized_request_env: str, deserialized_request_env: Any
    ) -> None:
        url = _header(headers, CERT_URL_HEADER)
        signature = _header(headers, SIGNATURE_HEADER)
        if not url or not signature:
            raise VerificationException(f"Missing {CERT_URL_HEADER} or {SIGNATURE_HEADER} header")
        try:
            signature_bytes = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise VerificationException("Signature header is not base64") from None
        validate_cert_url(url)
        leaf = self._cached_leaf(url)
        public_key = leaf.public_key()
        if not isinstance(public_key, RSAPublicKey):
            raise VerificationException("Signing certificate does not hold an RSA key")
        try:
            public_key.verify(
                signature_bytes, serialized_request_env.encode("utf-8"), PKCS1v15(), SHA256()
            )
        except InvalidSignature:
            raise VerificationException("Request signature does not match its body") from None


def _request_timestamp(envelope: Any) -> datetime | None:
    """``request.timestamp`` of a JSON envelope (ISO 8601, "Z" or offset), or None."""
    request = envelope.get("request") if isinstance(envelope, dict) else None
    raw = request.get("timestamp") if isinstance(request, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        stamp = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def _application_id(envelope: Any) -> str | None:
    """The skill id an envelope is for: context.System.application, else session.application."""
    for path in (("context", "System", "application"), ("session", "application")):
        node = envelope
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        found = node.get("applicationId") if isinstance(node, dict) else None
        if isinstance(found, str):
            return found
    return None


class TimestampVerifier(AbstractVerifier):  # type: ignore[misc, valid-type]
    """Rejects replays: the request timestamp must be within 150 s of now (reads the JSON)."""

    def __init__(
        self,
        tolerance_seconds: float = TIMESTAMP_TOLERANCE_SECONDS,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._tolerance = min(tolerance_seconds, TIMESTAMP_TOLERANCE_SECONDS)
        self._clock = clock

    def verify(
        self, headers: Any, serialized_request_env: str, deserialized_request_env: Any
    ) -> None:
        timestamp = _request_timestamp(deserialized_request_env)
        if timestamp is None:
            raise VerificationException("Request has no readable timestamp")
        skew = abs((self._clock() - timestamp).total_seconds())
        if skew > self._tolerance:
            raise VerificationException(
                f"Request timestamp is {skew:.0f} s from now (tolerance {self._tolerance:.0f} s)"
            )


class SkillIdVerifier(AbstractVerifier):  # type: ignore[misc, valid-type]
    """Refuses requests meant for another skill (reads the JSON envelope)."""

    def __init__(self, skill_id: str) -> None:
        self._skill_id = skill_id

    def verify(
        self, headers: Any, serialized_request_env: str, deserialized_request_env: Any
    ) -> None:
        found = _application_id(deserialized_request_env)
        if found != self._skill_id:
            shown = found[:80] if found else None
            raise VerificationException(f"Request is for skill {shown!r}, not this skill")


def default_verifiers(skill_id: str, signature_verifier: Any | None = None) -> list[Any]:
    """What a public endpoint must check, cheapest first: timestamp, skill id, then signature.

    Each takes the raw body and the parsed JSON envelope (a dict), never the SDK's objects: they
    run before the SDK deserialises anything.
    """
    return [
        TimestampVerifier(),
        SkillIdVerifier(skill_id),
        signature_verifier or SignatureVerifier(),
    ]
