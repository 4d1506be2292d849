"""Alembic environment, started from alembic's generic template.

The database comes from, in order: an Engine passed by :func:`db.engine.upgrade_database`
(``config.attributes["engine"]``), ``sqlalchemy.url`` in the config, or our settings
(BEDTIME_DATABASE_URL). ``render_as_batch`` makes ALTERs work on SQLite.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from db.engine import compare_type, include_object, make_engine
from db.models import Base

config = context.config

# Only configure logging for the bare `alembic` command; `bedtime` has set logging up already.
if config.config_file_name is not None and "engine" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata

COMPARE_OPTIONS = {
    "compare_type": compare_type,
    "include_object": include_object,
    "render_as_batch": True,
}


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``)."""
    url = config.get_main_option("sqlalchemy.url") or str(make_engine().url)
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **COMPARE_OPTIONS,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        engine = make_engine(config.get_main_option("sqlalchemy.url") or None)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # Our SQLite engine lets SQLAlchemy emit BEGIN, so a failed migration rolls back
            # there; MySQL commits each DDL statement implicitly whatever we do.
            transactional_ddl=connection.dialect.name == "sqlite",
            **COMPARE_OPTIONS,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
