"""Request bodies of the REST API as pydantic models: validated here, published in OpenAPI."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class StoryCreate(_Body):
    """A story written elsewhere; it passes the safety gate before it is stored."""

    title: str = Field(min_length=1, max_length=300)
    text: str = Field(min_length=1, max_length=100_000)
    keywords: list[str] = Field(min_length=1, max_length=10)
    locale: str = Field(default="en-US", max_length=16)
    source: Literal["handwritten", "imported", "generated"] = "handwritten"
    status: Literal["pending", "approved"] = "pending"


class Review(_Body):
    """A person's decision; reject and withdraw need a reason, approve passes the safety gate."""

    action: Literal["approve", "reject", "withdraw"]
    reason: str | None = Field(default=None, max_length=2000)
    force: bool = Field(default=False, description="approve even though the safety gate objects")


class SynonymCreate(_Body):
    synonym: str = Field(min_length=1, max_length=100)


class GenerationRequestCreate(_Body):
    """Queue stories about these keywords (the batch generator serves the most wanted first)."""

    keywords: list[str] = Field(min_length=1, max_length=4)
    locale: str = Field(default="en-US", max_length=16)


class LiveModelChoice(_Body):
    name: str = Field(min_length=1, max_length=200)


BODIES: tuple[type[BaseModel], ...] = (
    StoryCreate,
    Review,
    SynonymCreate,
    GenerationRequestCreate,
    LiveModelChoice,
)
