"""Alembic migrations for the story store (run with ``bedtime db upgrade``)."""
