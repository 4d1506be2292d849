"""``/console``: server-rendered pages for operators (review queue, catalogue, demand, models).

Every form carries a CSRF token (checked for every POST below); review forms also carry the
story's revision, so a reviewer acting on a stale page gets "someone else reviewed it" instead of
overwriting the other reviewer.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers.response import Response as WerkzeugResponse

from console import audio, charts
from console.auth import (
    SESSION_KEY,
    client_address,
    csrf,
    hash_password,
    page_requires,
    password_matches,
)
from console.context import context, store
from db import store as catalogue
from db.models import ReviewStatus, Story, StorySource
from db.store import operators as accounts
from db.store import overview
from db.store.queue import RedirectedRequest
from db.store.reviews import FlaggedStory

logger = logging.getLogger(__name__)

pages = Blueprint(
    "console", __name__, url_prefix="/console", template_folder="templates", static_folder="static"
)
DONE = {"approve": "approved", "reject": "rejected", "withdraw": "withdrawn"}
QUEUE_PAGE = 20
BROWSE_PAGE = 30
# A fixed hash to verify against when the name is unknown: same work, no timing oracle.
_DUMMY_HASH = hash_password("not a real password")


@pages.before_request
def _check_csrf() -> None:
    if request.method == "POST":
        csrf.protect()


def render_error(status: int, message: str) -> tuple[str, int]:
    return render_template("console/error.html", status=status, message=message), status


def _safe_next(target: str | None) -> str:
    """Only same-site console paths: no open redirect through ?next=."""
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return url_for("console.dashboard")


@pages.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        return render_template("console/login.html", next=request.args.get("next", ""))
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    session_db = store()
    wait = accounts.login_blocked_for(session_db, name, client_address())
    if wait is not None:
        minutes = max(1, round(wait.total_seconds() / 60))
        logger.warning("login for %r from %s throttled", name, client_address())
        page = render_template(
            "console/login.html",
            error=f"Too many failed logins. Try again in about {minutes} minute(s).",
            next=request.form.get("next", ""),
        )
        return page, 429, {"Retry-After": str(int(wait.total_seconds()))}
    operator = accounts.find_operator(session_db, name) if name else None
    ok = password_matches(operator.password_hash if operator else _DUMMY_HASH, password)
    if operator is None or not operator.active or not ok:
        accounts.record_login_failure(session_db, name or "-", client_address())
        session_db.commit()
        logger.warning("failed console login for %r from %s", name, client_address())
        page = render_template(
            "console/login.html", error="Wrong name or password.", next=request.form.get("next", "")
        )
        return page, 401
    accounts.record_login_success(session_db, operator, client_address())
    session_db.commit()
    session.clear()
    session.permanent = True
    session[SESSION_KEY] = operator.id
    logger.info("operator %s logged in from %s", operator.name, client_address())
    return redirect(_safe_next(request.form.get("next")))


@pages.post("/logout")
def logout() -> WerkzeugResponse:
    session.clear()
    return redirect(url_for("console.login"))


@pages.get("/")
@page_requires("read")
def dashboard() -> str:
    session_db = store()
    stats = overview.catalogue_stats(session_db)
    wanted = [
        (" + ".join(r.keywords), r.demand_count) for r in overview.missing_topics(session_db, 10)
    ]
    return render_template(
        "console/dashboard.html",
        stats=stats,
        plays=charts.day_bars("Stories told per day", overview.plays_per_day(session_db)),
        added=charts.day_bars(
            "Stories added per day", overview.stories_per_day(session_db), "#8a5cc7"
        ),
        demand=charts.day_bars(
            "New topics asked for per day", overview.new_demand_per_day(session_db), "#d8774f"
        ),
        coverage=charts.ranked_bars(
            "Keywords with the most approved stories", overview.keyword_coverage(session_db)
        ),
        missing=charts.ranked_bars("Most wanted missing topics", wanted, "#d8774f"),
    )


def _latest_reasons(story_ids: list[int]) -> dict[int, Any]:
    """The newest safety verdict of each story, for the reviewer to read."""
    found: dict[int, Any] = {}
    for story_id in story_ids:
        trail = catalogue.reviews_of(store(), story_id)
        if trail:
            found[story_id] = trail[-1].reasons
    return found


@pages.get("/review")
@page_requires("review")
def review_queue() -> str:
    stories, total = overview.find_stories(
        store(),
        overview.StoryFilter(status=ReviewStatus.PENDING.value),
        limit=QUEUE_PAGE,
        oldest_first=True,
    )
    return render_template(
        "console/review.html",
        stories=stories,
        total=total,
        reasons=_latest_reasons([s.id for s in stories]),
    )


@pages.post("/stories/<int:story_id>/review")
@page_requires("review")
def review_story(story_id: int) -> WerkzeugResponse:
    action = request.form.get("action", "")
    reason = request.form.get("reason") or None
    back = _safe_next(request.form.get("next"))
    try:
        seen = int(request.form.get("revision", ""))
    except ValueError:
        abort(400, "the form has no story revision; reload the page")
    session_db = store()
    try:
        overview.review_by_person(
            session_db,
            story_id,
            action,
            reviewer=g.principal.name,
            seen_revision=seen,
            reason=reason,
            gate=context().gate,
        )
    except overview.StaleStory:
        session_db.rollback()
        flash(f"Story {story_id} changed while you were reading it; here it is again.", "warn")
        return redirect(back)
    except FlaggedStory as exc:
        session_db.commit()
        flash(
            f"Story {story_id} was not approved: the safety gate says {exc.verdict.reason}.", "warn"
        )
        return redirect(back)
    except (LookupError, ValueError) as exc:
        session_db.rollback()
        flash(str(exc), "warn")
        return redirect(back)
    session_db.commit()
    flash(f"Story {story_id}: {DONE[action]}.", "ok")
    return redirect(back)


@pages.get("/stories")
@page_requires("read")
def browse() -> str:
    args = request.args
    wanted = overview.StoryFilter(
        keyword=args.get("keyword") or None,
        status=args.get("status") if args.get("status") in set(ReviewStatus) else None,
        source=args.get("source") if args.get("source") in set(StorySource) else None,
        model=args.get("model") or None,
        verdict=args.get("verdict") if args.get("verdict") in overview.VERDICTS else None,
        text=args.get("q") or None,
    )
    try:
        page = max(1, int(args.get("page", 1)))
    except ValueError:
        page = 1
    stories, total = overview.find_stories(
        store(), wanted, offset=(page - 1) * BROWSE_PAGE, limit=BROWSE_PAGE
    )
    return render_template(
        "console/stories.html",
        stories=stories,
        total=total,
        page=page,
        pages=max(1, -(-total // BROWSE_PAGE)),
        wanted=wanted,
        statuses=[s.value for s in ReviewStatus],
        sources=[s.value for s in StorySource],
        verdicts=overview.VERDICTS,
    )


@pages.get("/stories/<int:story_id>")
@page_requires("read")
def story(story_id: int) -> str:
    found = store().get(Story, story_id)
    if found is None:
        abort(404, f"There is no story {story_id}.")
    return render_template(
        "console/story.html", story=found, trail=catalogue.reviews_of(store(), story_id)
    )


@pages.get("/stories/<int:story_id>/audio")
@page_requires("read")
def story_audio(story_id: int) -> Response:
    found = store().get(Story, story_id)
    if found is None:
        abort(404, f"There is no story {story_id}.")
    try:
        wav = audio.render_wav(found.text, found.locale)
    except audio.SpeechUnavailable as exc:
        abort(503, str(exc))
    return Response(wav, mimetype="audio/wav", headers={"Cache-Control": "private, max-age=600"})


@pages.get("/demand")
@page_requires("read")
def demand() -> str:
    rows, total = overview.demand(store(), limit=100)
    return render_template("console/demand.html", rows=rows, total=total)


@pages.post("/demand/queue")
@page_requires("review")
def queue_topic() -> WerkzeugResponse:
    words = [w for w in request.form.get("keywords", "").replace(",", " ").split() if w]
    locale = request.form.get("locale") or context().settings.default_locale
    session_db = store()
    try:
        wish = catalogue.request_generation(session_db, words, locale)
    except (RedirectedRequest, ValueError) as exc:
        session_db.rollback()
        flash(f"Not queued: {exc}", "warn")
        return redirect(url_for("console.demand"))
    session_db.commit()
    flash(
        f"Queued {' + '.join(wish.keywords)} ({wish.locale}): asked {wish.demand_count} time(s), "
        f"{wish.status}. The next `bedtime generate` run writes it.",
        "ok",
    )
    return redirect(url_for("console.demand"))


@pages.get("/models")
@page_requires("read")
def models() -> str:
    session_db = store()
    records = overview.list_models(session_db)
    return render_template(
        "console/models.html",
        models=records,
        counts=overview.stories_by_model(session_db),
        samples={m.id: overview.sample_stories(session_db, m.id) for m in records},
    )


@pages.post("/models/live")
@page_requires("admin")
def choose_live() -> WerkzeugResponse:
    session_db = store()
    try:
        chosen = overview.choose_live_model(session_db, request.form.get("name", ""))
    except LookupError as exc:
        flash(str(exc), "warn")
        return redirect(url_for("console.models"))
    session_db.commit()
    flash(f"{chosen.name} now tells the live stories.", "ok")
    return redirect(url_for("console.models"))


@pages.route("/tokens", methods=["GET", "POST"])
@page_requires("read")
def tokens() -> str:
    session_db = store()
    operator = accounts.find_operator(session_db, g.principal.name)
    issued = None
    if request.method == "POST" and operator is not None:
        scopes = set(request.form.getlist("scope"))
        try:
            issued = accounts.issue_token(
                session_db, operator, request.form.get("label", ""), scopes
            )
        except ValueError as exc:
            flash(str(exc), "warn")
        session_db.commit()
    return render_template(
        "console/tokens.html",
        issued=issued,
        tokens=accounts.tokens_of(session_db, operator),
        allowed=sorted(g.principal.scopes),
    )


@pages.post("/tokens/<int:token_id>/revoke")
@page_requires("read")
def revoke_token(token_id: int) -> WerkzeugResponse:
    session_db = store()
    operator = accounts.find_operator(session_db, g.principal.name)
    try:
        accounts.revoke_token(session_db, operator, token_id)
    except LookupError as exc:
        abort(404, str(exc))
    session_db.commit()
    flash(f"Token {token_id} revoked.", "ok")
    return redirect(url_for("console.tokens"))


@pages.app_template_filter("keywords")
def _keywords(story_row: Story) -> str:
    return ", ".join(story_row.keyword_lemmas)


__all__ = ["pages", "render_error"]
