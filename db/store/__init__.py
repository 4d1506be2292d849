"""The story store's API: plain functions over a Session, no Alexa types.

One module per part of the store, one import surface (``from db.store import choose_story``):

* :mod:`db.store.keywords` resolves what a listener said to canonical keywords (synonyms too)
  and lists the keywords that have stories;
* :mod:`db.store.stories` adds, reviews and reads stories;
* :mod:`db.store.choosing` picks a story for a listener with index range scans only;
* :mod:`db.store.listeners` keeps hashed listeners' attributes and play history;
* :mod:`db.store.queue` records demand for stories we lack and hands it to generator workers;
* :mod:`db.store.leases` lets workers hold requests and plan keyword sets with expiring leases;
* :mod:`db.store.reviews` keeps every safety verdict on a story and runs the gate (``safety``)
  before approved-looking imports, approvals and catalogue rechecks.

Transactions: functions flush but do not commit, so a caller can make several calls atomic
(e.g. ``add_story`` + ``complete_generation_request``) and commit once. The exceptions are
:func:`claim_generation_requests` and the lease functions that say so, which commit so the claim
is visible to other workers and its row locks are released at once.

Listener ids: every function taking a listener id accepts either the sha256 key from
:func:`hash_listener_id` or a raw id, which is hashed first, so raw ids never reach the database.
"""

from __future__ import annotations

from db.store.choosing import (
    DEFAULT_LENGTH,
    LENGTH_BANDS,
    PICK_SAMPLE,
    SUGGESTION_COUNT,
    Match,
    StoryChoice,
    choose_story,
)
from db.store.keywords import (
    KeywordMatch,
    add_synonym,
    keyword_catalogue,
    known_keywords,
    resolve_keyword,
    resolve_keywords,
)
from db.store.leases import (
    claim_plan_set,
    clear_lapsed_plan_leases,
    hold_plan_set,
    is_lock_conflict,
    keyword_set_key,
    release_plan_sets,
    release_request_claims,
    renew_plan_leases,
    renew_request_claims,
)
from db.store.listeners import (
    ListenerTurn,
    delete_listener,
    hash_listener_id,
    load_listener_attributes,
    open_listener,
    record_play,
    save_listener_attributes,
)
from db.store.queue import (
    CLAIM_TIMEOUT,
    MAX_ATTEMPTS,
    claim_generation_requests,
    complete_generation_request,
    demand_write,
    pending_generation_count,
    request_generation,
)
from db.store.reviews import (
    FlaggedStory,
    RecheckReport,
    approve_story,
    gate_drafts,
    recheck_stories,
    record_verdict,
    reviews_of,
)
from db.store.stories import (
    StoryDraft,
    StoryView,
    add_story,
    content_hash,
    get_story,
    iter_stories,
    list_stories,
    refresh_keyword_counts,
    review_story,
)

__all__ = [
    "CLAIM_TIMEOUT",
    "DEFAULT_LENGTH",
    "LENGTH_BANDS",
    "MAX_ATTEMPTS",
    "PICK_SAMPLE",
    "SUGGESTION_COUNT",
    "FlaggedStory",
    "KeywordMatch",
    "ListenerTurn",
    "Match",
    "RecheckReport",
    "StoryChoice",
    "StoryDraft",
    "StoryView",
    "add_story",
    "add_synonym",
    "approve_story",
    "choose_story",
    "claim_generation_requests",
    "claim_plan_set",
    "clear_lapsed_plan_leases",
    "complete_generation_request",
    "content_hash",
    "delete_listener",
    "demand_write",
    "gate_drafts",
    "get_story",
    "hash_listener_id",
    "hold_plan_set",
    "is_lock_conflict",
    "iter_stories",
    "keyword_catalogue",
    "keyword_set_key",
    "known_keywords",
    "list_stories",
    "load_listener_attributes",
    "open_listener",
    "pending_generation_count",
    "recheck_stories",
    "record_play",
    "record_verdict",
    "refresh_keyword_counts",
    "release_plan_sets",
    "release_request_claims",
    "renew_plan_leases",
    "renew_request_claims",
    "request_generation",
    "resolve_keyword",
    "resolve_keywords",
    "review_story",
    "reviews_of",
    "save_listener_attributes",
]
