"""Who is asking: a console session (cookie + CSRF) or an API token (bearer, no cookie).

Passwords are hashed with argon2 (argon2-cffi); failed logins are counted in the store per name
and per address (:mod:`db.store.operators`), so the limit holds across gunicorn workers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import g, redirect, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect

from console.context import store
from console.problems import ApiProblem
from db.models import Operator
from db.store import operators as accounts

logger = logging.getLogger(__name__)

csrf = CSRFProtect()
_hasher = PasswordHasher()
SESSION_KEY = "operator_id"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
View = TypeVar("View", bound=Callable[..., Any])


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Principal:
    """The operator behind a request and what this request may do."""

    operator_id: int
    name: str
    scopes: frozenset[str]
    via: str  # "session" or "token"

    def may(self, scope: str) -> bool:
        return scope in self.scopes


def client_address() -> str:
    return request.remote_addr or "unknown"


def _from_token(header: str) -> Principal | None:
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiProblem(
            401,
            "unauthorized",
            "Unauthorized",
            "use 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": 'Bearer realm="bedtime"'},
        )
    token = accounts.token_for(store(), secret.strip())
    if token is None:
        return None
    store().commit()  # last_used_at
    # A scope includes the weaker ones (review can read), as roles do.
    scopes = frozenset().union(*(accounts.scopes_of_role(s) for s in token.scopes.split()))
    return Principal(token.operator_id, token.operator.name, scopes, "token")


def _from_session() -> Principal | None:
    operator_id = session.get(SESSION_KEY)
    if operator_id is None:
        return None
    operator = store().get(Operator, operator_id)
    if operator is None or not operator.active:
        session.clear()
        return None
    return Principal(operator.id, operator.name, accounts.scopes_of_role(operator.role), "session")


def current_principal() -> Principal | None:
    """The principal of this request (looked up once); a bearer header wins over a cookie."""
    if "principal" not in g:
        header = request.headers.get("Authorization")
        g.principal = _from_token(header) if header else _from_session()
    principal: Principal | None = g.principal
    return principal


def api_requires(scope: str) -> Callable[[View], View]:
    """API guard: 401 without credentials, 403 without ``scope``, CSRF for cookie writes."""

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if principal is None:
                raise ApiProblem(
                    401,
                    "unauthorized",
                    "Unauthorized",
                    "a valid API token or a console login is required",
                    headers={"WWW-Authenticate": 'Bearer realm="bedtime"'},
                )
            if principal.via == "session" and request.method in UNSAFE_METHODS:
                csrf.protect()
            if not principal.may(scope):
                raise ApiProblem(
                    403,
                    "insufficient-scope",
                    "Forbidden",
                    f"this needs the {scope!r} scope; yours: {sorted(principal.scopes)}",
                    required_scope=scope,
                )
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


def page_requires(scope: str) -> Callable[[View], View]:
    """Console guard: the login page without a session, 403 without ``scope``."""

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            principal = _from_session()
            if principal is None:
                return redirect(url_for("console.login", next=request.full_path))
            g.principal = principal
            if not principal.may(scope):
                from flask import abort

                abort(403, f"this page needs the {scope!r} role")
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


__all__ = [
    "CSRFError",
    "Principal",
    "api_requires",
    "client_address",
    "csrf",
    "current_principal",
    "hash_password",
    "page_requires",
    "password_matches",
]
