"""Who is asking: browser sessions (signed cookie + CSRF token) or an API token.

The session cookie is starlette's ``SessionMiddleware`` (itsdangerous-signed JSON, HttpOnly,
SameSite=Strict) holding the user's id and a CSRF token. The secret that signs it is kept
in the project's ``meta`` table, so every server process on one project (and a restart)
accepts the same sessions; a read-only project gets a per-process secret instead.

Every state-changing request made with the session must carry the session's CSRF token in
the ``X-CSRF-Token`` header (the page reads it from ``GET /ui/api/session``): a page on
another site can make the browser send the cookie (SameSite=Strict already stops most
of that) but cannot read the token. Requests with ``Authorization: Token ...`` carry no
cookie and need no CSRF token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request

from quadrat.errors import ConflictError, StateError
from quadrat.service import accounts
from quadrat.store import accounts as stored_accounts
from quadrat.store import annotate

if TYPE_CHECKING:
    from quadrat.service.ui.state import UiState

#: The session cookie's name.
SESSION_COOKIE = "quadrat_session"
#: Header a state-changing request repeats the session's CSRF token in.
CSRF_HEADER = "X-CSRF-Token"
#: Seconds a session lasts without signing in again.
SESSION_SECONDS = 12 * 3600
#: Key of the signing secret in the project's meta table.
SECRET_KEY = "ui_session_secret"

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_secret(store: Any) -> str:
    """The project's session-signing secret, made on first use (per process if read-only)."""
    candidate = secrets.token_hex(32)
    try:
        with store.session() as session:
            return annotate.add_meta_value(session, SECRET_KEY, candidate)
    except (StateError, ConflictError):
        with store.session() as session:
            stored = annotate.meta_value(session, SECRET_KEY)
        return stored if stored is not None else candidate


@dataclass(frozen=True)
class UiUser:
    """The signed-in user of a request."""

    id: int
    username: str
    #: "session" (a browser) or "token" (Authorization: Token ...).
    via: str


def ui_state(request: Request) -> UiState:
    state: UiState = request.app.state.quadrat_ui
    return state


def _token_user(request: Request, state: UiState) -> UiUser | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "token" or not token.strip():
        return None
    info = accounts.user_for_token(state.store, token.strip())
    if info is None:
        raise HTTPException(status_code=401, detail="Invalid token.")
    return UiUser(info.id, info.username, "token")


def _session_user(request: Request, state: UiState) -> UiUser | None:
    user_id = request.session.get("uid")
    if not isinstance(user_id, int):
        return None
    with state.store.session() as session:
        info = stored_accounts.user_by_id(session, user_id)
    if info is None or not info.active:
        request.session.clear()
        return None
    return UiUser(info.id, info.username, "session")


def current_user(request: Request) -> UiUser:
    """The request's user; 401 without a session or token, 403 on a missing CSRF token."""
    state = ui_state(request)
    user = _token_user(request, state)
    if user is not None:
        return user
    user = _session_user(request, state)
    if user is None:
        raise HTTPException(status_code=401, detail="Sign in first.")
    check_csrf(request)
    return user


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request) -> None:
    """403 unless a state-changing request repeats the session's token (and is same-origin)."""
    if request.method in _SAFE_METHODS:
        return
    expected = request.session.get("csrf")
    given = request.headers.get(CSRF_HEADER, "")
    if not isinstance(expected, str) or not secrets.compare_digest(expected, given):
        raise HTTPException(status_code=403, detail="CSRF token missing or wrong; reload the page.")
    origin = request.headers.get("origin")
    if origin is not None and origin.rstrip("/") != str(request.base_url).rstrip("/"):
        raise HTTPException(status_code=403, detail="Cross-origin request refused.")


def sign_in(request: Request, user_id: int) -> str:
    """Start a fresh session for the user (a new CSRF token: no fixation); returns it."""
    request.session.clear()
    request.session["uid"] = user_id
    token = secrets.token_urlsafe(32)
    request.session["csrf"] = token
    return token


def sign_out(request: Request) -> None:
    request.session.clear()
