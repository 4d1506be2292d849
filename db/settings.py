"""Moved to the top-level :mod:`settings` package; kept so ``from db.settings import ...`` works."""

from settings import (
    APP_NAME,
    ConfigurationError,
    Settings,
    default_data_dir,
    default_database_url,
)

__all__ = [
    "APP_NAME",
    "ConfigurationError",
    "Settings",
    "default_data_dir",
    "default_database_url",
]
