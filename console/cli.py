"""``bedtime operators``: console accounts and API tokens, from the server's shell."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

ROLES = ("read", "review", "admin")


def _session() -> Session:
    from db.engine import DatabaseUnavailable, check_database, make_engine, session_factory
    from settings import ConfigurationError, database_url

    try:
        engine = make_engine(database_url())
        check_database(engine)
    except (DatabaseUnavailable, ConfigurationError) as exc:
        raise click.ClickException(str(exc)) from None
    return session_factory(engine)()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        raise click.ClickException("a console password needs at least 10 characters")
    return password


@click.group("operators")
def operators_group() -> None:
    """Operators of the console (/console) and their API tokens."""


@operators_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="admin", show_default=True)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (scripts)."
)
def add_command(name: str, role: str, password_stdin: bool) -> None:
    """Add an operator; asks for the password twice (stored as an argon2 hash)."""
    from console.auth import hash_password
    from db.store import operators

    password = _password(password_stdin)
    with _session() as session:
        try:
            operators.add_operator(session, name, hash_password(password), role)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"operator {name} added ({role}); log in at /console/login")


@operators_group.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
def password_command(name: str, password_stdin: bool) -> None:
    """Set an operator's password."""
    from console.auth import hash_password
    from db.store import operators

    password = _password(password_stdin)
    with _session() as session:
        try:
            operators.set_password(session, name, hash_password(password))
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"password of {name} changed")


@operators_group.command("list")
def list_command() -> None:
    """Operators, their roles and last logins."""
    from db.store import operators

    with _session() as session:
        for op in operators.list_operators(session):
            last = op.last_login_at.strftime("%Y-%m-%d %H:%M") if op.last_login_at else "never"
            click.echo(f"{op.name}\t{op.role}\t{'active' if op.active else 'disabled'}\t{last}")


@operators_group.command("token")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(ROLES), default=["read"])
@click.option("--label", default="script", show_default=True)
def token_command(name: str, scopes: tuple[str, ...], label: str) -> None:
    """Issue an API token for NAME (printed once; only its hash is kept)."""
    from db.store import operators

    with _session() as session:
        operator = operators.find_operator(session, name)
        if operator is None:
            raise click.ClickException(f"no operator named {name!r}")
        try:
            issued = operators.issue_token(session, operator, label, set(scopes))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(issued.secret)
