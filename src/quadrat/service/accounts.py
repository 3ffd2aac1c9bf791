"""Passwords, API tokens and roles: the service's one home for "who is this, what may they do".

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommended
parameter set), never stored. Tokens are CoralNet-shaped (40 hex digits, 160 random bits)
and stored as their SHA-256: a random token needs no slow hash, and a leaked database holds
no usable token. Each sign-in makes a new token; tokens do not expire (CoralNet's rule);
:func:`revoke_tokens` ends them all.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

from quadrat.errors import InputError, missing_dependency
from quadrat.store import accounts
from quadrat.store.schema import Role

if TYPE_CHECKING:
    from argon2 import PasswordHasher
    from sqlalchemy.orm import Session

    from quadrat.store.accounts import UserInfo
    from quadrat.store.project import Store

#: Longest password accepted (argon2 hashes any length; this bounds the work per request).
MAX_PASSWORD_LENGTH = 1024
#: Usernames: CoralNet's (Django's) rule, letters, digits and @.+-_ up to 150 characters.
MAX_USERNAME_LENGTH = 150

_hasher: PasswordHasher | None = None


def _password_hasher() -> PasswordHasher:
    global _hasher
    if _hasher is None:
        try:
            from argon2 import PasswordHasher
        except ImportError as exc:
            raise missing_dependency("argon2", "serve", purpose="user passwords") from exc
        _hasher = PasswordHasher()
    return _hasher


def check_username(username: str) -> str:
    """The name, or an InputError saying what a valid one looks like."""
    if not (
        0 < len(username) <= MAX_USERNAME_LENGTH
        and all(ch.isalnum() or ch in "@.+-_" for ch in username)
    ):
        raise InputError(
            f"a username is 1-{MAX_USERNAME_LENGTH} letters, digits and @.+-_, not {username!r}",
            value=username,
            param="username",
        )
    return username


def hash_password(password: str) -> str:
    if not password:
        raise InputError("the password is empty", param="password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InputError(
            f"the password is longer than {MAX_PASSWORD_LENGTH} characters", param="password"
        )
    return _password_hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches; never raises for a wrong or malformed hash."""
    from argon2.exceptions import Argon2Error, InvalidHashError

    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _password_hasher().verify(password_hash, password)
    except (Argon2Error, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    """What the database stores for a token (its SHA-256, hex)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def add_user(
    store: Store,
    username: str,
    password: str,
    *,
    role: Role | str | None = None,
    sources: list[str] | None = None,
) -> int:
    """A new user, with ``role`` on each of ``sources`` (None: on every source)."""
    check_username(username)
    digest = hash_password(password)
    with store.session() as session:
        user_id = accounts.add_user(session, username, digest)
        if role is not None:
            _set_roles(session, username, Role(role), sources)
    return user_id


def set_role(store: Store, username: str, role: Role | str, sources: list[str] | None) -> None:
    """Give ``username`` ``role`` on ``sources`` (None: every source)."""
    with store.session() as session:
        _set_roles(session, username, Role(role), sources)


def _set_roles(session: Session, username: str, role: Role, sources: list[str] | None) -> None:
    from quadrat.store.queries import get_source

    if not sources:
        accounts.set_role(session, username, role, None)
        return
    for name in sources:
        source = get_source(session, name)
        accounts.set_role(session, username, role, source.id)


def set_password(store: Store, username: str, password: str) -> None:
    digest = hash_password(password)
    with store.session() as session:
        accounts.set_password_hash(session, username, digest)


def authenticate(store: Store, username: str, password: str) -> int | None:
    """The user's id when the password is right (and the user active), else None."""
    with store.session() as session:
        found = accounts.password_hash(session, username)
    if found is None:
        # Same work as a real check, so timing does not tell which usernames exist.
        verify_password(_dummy_hash(), password)
        return None
    user_id, digest = found
    return user_id if verify_password(digest, password) else None


_dummy: str | None = None


def _dummy_hash() -> str:
    global _dummy
    if _dummy is None:
        _dummy = _password_hasher().hash(secrets.token_hex(16))
    return _dummy


def issue_token(store: Store, user_id: int) -> str:
    """A new API token for the user (returned once; only its digest is stored)."""
    token = secrets.token_hex(20)
    with store.session() as session:
        accounts.add_token(session, user_id, token_digest(token))
    return token


def user_for_token(store: Store, token: str) -> UserInfo | None:
    """The active user holding ``token``, or None."""
    if not (len(token) == 40 and all(c in "0123456789abcdef" for c in token)):
        return None
    with store.session() as session:
        return accounts.user_of_token(session, token_digest(token))


def revoke_tokens(store: Store, username: str) -> int:
    with store.session() as session:
        return accounts.revoke_tokens(session, username)


def role_on_source(store: Store, user_id: int, source_id: int) -> Role | None:
    with store.session() as session:
        return accounts.role_on_source(session, user_id, source_id)


def may(store: Store, user_id: int, source_id: int, needed: Role | str) -> bool:
    """Whether the user's role on the source is at least ``needed``."""
    role = role_on_source(store, user_id, source_id)
    return role is not None and role.rank >= Role(needed).rank
