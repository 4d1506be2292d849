"""Safety review trail: a safety_reviews table, and the 'withdrawn' review status.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 15:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MYSQL_TABLE_OPTIONS = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}
OLD_STATUSES = "review_status IN ('pending', 'approved', 'rejected')"
NEW_STATUSES = "review_status IN ('pending', 'approved', 'rejected', 'withdrawn')"


def upgrade() -> None:
    op.create_table(
        "safety_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("checker", sa.String(length=100), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["story_id"],
            ["stories.id"],
            name=op.f("fk_safety_reviews_story_id_stories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_reviews")),
        **MYSQL_TABLE_OPTIONS,
    )
    with op.batch_alter_table("safety_reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_safety_reviews_story_id"), ["story_id"], unique=False)
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_stories_review_status"), type_="check")
        batch_op.create_check_constraint("review_status", NEW_STATUSES)


def downgrade() -> None:
    op.execute("UPDATE stories SET review_status = 'rejected' WHERE review_status = 'withdrawn'")
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_stories_review_status"), type_="check")
        batch_op.create_check_constraint("review_status", OLD_STATUSES)
    op.drop_table("safety_reviews")  # its index and foreign key go with it
