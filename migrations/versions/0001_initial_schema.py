"""Initial schema: stories, keywords, models registry, generation queue, listeners.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 14:38:34.166076
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Self-contained copies of db.models' type helpers: a migration must not change when models do.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MYSQL_TABLE_OPTIONS = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def exact_string(length: int) -> sa.types.TypeEngine:
    """VARCHAR with binary collation on MySQL, so 'café' and 'cafe' are different keywords."""
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


def upgrade() -> None:
    """Create the whole story-store schema."""
    op.create_table(
        "keywords",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lemma", exact_string(100), nullable=False),
        sa.Column("story_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keywords")),
        sa.UniqueConstraint("lemma", name=op.f("uq_keywords_lemma")),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "listeners",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_listeners")),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("model_class", sa.String(length=200), nullable=False),
        sa.Column("hyperparameters", sa.JSON(), nullable=False),
        sa.Column("artifact_path", sa.String(length=1000), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("name", name=op.f("uq_models_name")),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "keyword_synonyms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("synonym", exact_string(100), nullable=False),
        sa.Column("keyword_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["keyword_id"],
            ["keywords.id"],
            name=op.f("fk_keyword_synonyms_keyword_id_keywords"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keyword_synonyms")),
        sa.UniqueConstraint("synonym", name=op.f("uq_keyword_synonyms_synonym")),
        **MYSQL_TABLE_OPTIONS,
    )
    with op.batch_alter_table("keyword_synonyms", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_keyword_synonyms_keyword_id"), ["keyword_id"], unique=False
        )

    op.create_table(
        "stories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("word_count", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("requested_keywords", sa.JSON(), nullable=True),
        sa.Column("review_status", sa.String(length=16), nullable=False),
        sa.Column("rejection_reason", sa.Text(), nullable=True),
        sa.Column("safety_verdict", sa.String(length=200), nullable=True),
        sa.Column("quality", sa.JSON(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("random_key", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "review_status IN ('pending', 'approved', 'rejected')",
            name=op.f("ck_stories_review_status"),
        ),
        sa.CheckConstraint(
            "source IN ('generated', 'imported', 'handwritten')", name=op.f("ck_stories_source")
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_stories_model_id_models"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stories")),
        sa.UniqueConstraint("content_hash", name=op.f("uq_stories_content_hash")),
        **MYSQL_TABLE_OPTIONS,
    )
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stories_model_id"), ["model_id"], unique=False)
        batch_op.create_index(
            "ix_stories_pick", ["review_status", "locale", "random_key"], unique=False
        )

    op.create_table(
        "generation_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("keywords_key", exact_string(255), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("demand_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_at", TIMESTAMP, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("story_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'claimed', 'done', 'failed')",
            name=op.f("ck_generation_requests_status"),
        ),
        sa.ForeignKeyConstraint(
            ["story_id"],
            ["stories.id"],
            name=op.f("fk_generation_requests_story_id_stories"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generation_requests")),
        sa.UniqueConstraint(
            "keywords_key", "locale", name=op.f("uq_generation_requests_keywords_key")
        ),
        **MYSQL_TABLE_OPTIONS,
    )
    with op.batch_alter_table("generation_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_generation_requests_queue", ["status", "demand_count"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_generation_requests_story_id"), ["story_id"], unique=False
        )

    op.create_table(
        "play_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("listener_key", sa.String(length=64), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("played_at", TIMESTAMP, nullable=False),
        sa.Column("finished", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["listener_key"],
            ["listeners.key"],
            name=op.f("fk_play_history_listener_key_listeners"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["story_id"],
            ["stories.id"],
            name=op.f("fk_play_history_story_id_stories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_play_history")),
        **MYSQL_TABLE_OPTIONS,
    )
    with op.batch_alter_table("play_history", schema=None) as batch_op:
        batch_op.create_index("ix_play_history_recent", ["listener_key", "played_at"], unique=False)
        batch_op.create_index(
            "ix_play_history_listener", ["listener_key", "story_id", "played_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_play_history_story_id"), ["story_id"], unique=False)

    op.create_table(
        "story_keywords",
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("keyword_id", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("random_key", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["keyword_id"],
            ["keywords.id"],
            name=op.f("fk_story_keywords_keyword_id_keywords"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["story_id"],
            ["stories.id"],
            name=op.f("fk_story_keywords_story_id_stories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("story_id", "keyword_id", name=op.f("pk_story_keywords")),
        **MYSQL_TABLE_OPTIONS,
    )
    with op.batch_alter_table("story_keywords", schema=None) as batch_op:
        batch_op.create_index(
            "ix_story_keywords_pick",
            ["keyword_id", "locale", "approved", "random_key", "story_id"],
            unique=False,
        )

    op.create_table(
        "story_keyword_pairs",
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("first_keyword_id", sa.Integer(), nullable=False),
        sa.Column("second_keyword_id", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("random_key", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["first_keyword_id"],
            ["keywords.id"],
            name=op.f("fk_story_keyword_pairs_first_keyword_id_keywords"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["second_keyword_id"],
            ["keywords.id"],
            name=op.f("fk_story_keyword_pairs_second_keyword_id_keywords"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["story_id"],
            ["stories.id"],
            name=op.f("fk_story_keyword_pairs_story_id_stories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "story_id",
            "first_keyword_id",
            "second_keyword_id",
            name=op.f("pk_story_keyword_pairs"),
        ),
        **MYSQL_TABLE_OPTIONS,
    )
    with op.batch_alter_table("story_keyword_pairs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_story_keyword_pairs_pick",
            [
                "first_keyword_id",
                "second_keyword_id",
                "locale",
                "approved",
                "random_key",
                "story_id",
            ],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_story_keyword_pairs_second_keyword_id"),
            ["second_keyword_id"],
            unique=False,
        )


def downgrade() -> None:
    """Drop everything, children first (dropping a table drops its indexes)."""
    op.drop_table("story_keyword_pairs")
    op.drop_table("story_keywords")
    op.drop_table("play_history")
    op.drop_table("generation_requests")
    op.drop_table("stories")
    op.drop_table("keyword_synonyms")
    op.drop_table("models")
    op.drop_table("listeners")
    op.drop_table("keywords")
