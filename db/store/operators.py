"""Operators of the console, their API tokens, and the failed logins that slow down guessing.

Passwords arrive here already hashed (console/ hashes them with argon2); tokens arrive as the
plain secret and only their sha256 is stored: a token is 256 random bits, so a fast hash is
enough and lets a request find its token with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from db.models import ApiToken, LoginFailure, Operator, OperatorRole, _utcnow

log = logging.getLogger(__name__)

#: Roles in order of power: a role grants every scope up to and including itself.
ROLE_ORDER = (OperatorRole.READ.value, OperatorRole.REVIEW.value, OperatorRole.ADMIN.value)
TOKEN_PREFIX = "bt_"


def scopes_of_role(role: str) -> frozenset[str]:
    """The scopes a role grants: review includes read, admin includes both."""
    if role not in ROLE_ORDER:
        raise ValueError(f"role must be one of {list(ROLE_ORDER)}")
    return frozenset(ROLE_ORDER[: ROLE_ORDER.index(role) + 1])


def find_operator(session: Session, name: str) -> Operator | None:
    return session.scalar(select(Operator).where(Operator.name == name))


def add_operator(session: Session, name: str, password_hash: str, role: str) -> Operator:
    """A new operator; ValueError when the name is taken or malformed."""
    name = name.strip()
    if not name or len(name) > 100 or any(ch.isspace() for ch in name):
        raise ValueError("an operator name is 1-100 characters without spaces")
    scopes_of_role(role)
    if find_operator(session, name) is not None:
        raise ValueError(f"operator {name!r} already exists")
    operator = Operator(name=name, password_hash=password_hash, role=role, active=True)
    session.add(operator)
    session.flush()
    log.info("operator %s added (role %s)", name, role)
    return operator


def set_password(session: Session, name: str, password_hash: str) -> Operator:
    operator = find_operator(session, name)
    if operator is None:
        raise LookupError(f"no operator named {name!r}")
    operator.password_hash = password_hash
    session.flush()
    return operator


def list_operators(session: Session) -> list[Operator]:
    return list(session.scalars(select(Operator).order_by(Operator.name)))


# --------------------------------------------------------------------------- tokens


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``secret`` is shown once and never stored."""

    id: int
    secret: str
    scopes: frozenset[str]


def issue_token(
    session: Session, operator: Operator, label: str, scopes: frozenset[str] | set[str]
) -> IssuedToken:
    """A bearer token for ``operator``; its scopes may not exceed the operator's role."""
    wanted = frozenset(scopes)
    allowed = scopes_of_role(operator.role)
    if not wanted or not wanted <= allowed:
        raise ValueError(f"scopes must be a non-empty subset of {sorted(allowed)}")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        operator_id=operator.id,
        label=(label.strip() or "token")[:100],
        token_hash=token_digest(secret),
        scopes=" ".join(s for s in ROLE_ORDER if s in wanted),
    )
    session.add(row)
    session.flush()
    log.info("API token %s (%s) issued to %s", row.id, row.scopes, operator.name)
    return IssuedToken(id=row.id, secret=secret, scopes=wanted)


def token_for(session: Session, secret: str) -> ApiToken | None:
    """The live token with this secret (and an active operator), its last use stamped."""
    row = session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == token_digest(secret), ApiToken.revoked_at.is_(None)
        )
    )
    if row is None or not row.operator.active:
        return None
    row.last_used_at = _utcnow()
    return row


def tokens_of(session: Session, operator: Operator) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.operator_id == operator.id).order_by(ApiToken.id)
        )
    )


def revoke_token(session: Session, operator: Operator, token_id: int) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None or row.operator_id != operator.id:
        raise LookupError(f"no token {token_id} of {operator.name}")
    row.revoked_at = row.revoked_at or _utcnow()
    session.flush()
    return row


# --------------------------------------------------------------------------- login throttle

#: At most this many failed logins per name (and 4x per address) in LOGIN_WINDOW.
MAX_LOGIN_FAILURES = 5
LOGIN_WINDOW = timedelta(minutes=15)


def login_blocked_for(session: Session, name: str, address: str) -> timedelta | None:
    """How long until a login for ``name`` from ``address`` may be tried again (None: now)."""
    since = _utcnow() - LOGIN_WINDOW
    by_name = select(func.count(), func.min(LoginFailure.failed_at)).where(
        LoginFailure.name == name[:100], LoginFailure.failed_at >= since
    )
    by_address = select(func.count(), func.min(LoginFailure.failed_at)).where(
        LoginFailure.address == address[:64], LoginFailure.failed_at >= since
    )
    for stmt, limit in ((by_name, MAX_LOGIN_FAILURES), (by_address, 4 * MAX_LOGIN_FAILURES)):
        count, oldest = session.execute(stmt).one()
        if count >= limit and oldest is not None:
            return max(oldest + LOGIN_WINDOW - _utcnow(), timedelta(seconds=1))
    return None


def record_login_failure(session: Session, name: str, address: str) -> None:
    session.add(LoginFailure(name=name[:100], address=address[:64]))
    # Old rows are no use to the throttle: keep the table small.
    session.execute(delete(LoginFailure).where(LoginFailure.failed_at < _utcnow() - LOGIN_WINDOW))
    session.flush()


def record_login_success(session: Session, operator: Operator, address: str) -> None:
    """Stamp the login and forget this name's failures (a forgotten password, then success).

    The address's failures stay: logging into one's own account must not reset the counter an
    attacker at that address is running against other names.
    """
    operator.last_login_at = _utcnow()
    session.execute(delete(LoginFailure).where(LoginFailure.name == operator.name[:100]))
    session.flush()
