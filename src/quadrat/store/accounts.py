"""Users, their roles on sources, and API tokens: every read and write of those tables.

The service (:mod:`quadrat.service`) hashes passwords and makes tokens; this module only
stores what it is given (a password hash, a token's SHA-256), so no secret is ever written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quadrat.errors import ConflictError, NotFoundError
from quadrat.store.schema import ApiToken, Role, Source, SourceRole, User


@dataclass(frozen=True)
class UserInfo:
    """A user as the service sees it (no password hash)."""

    id: int
    username: str
    active: bool
    created_at: datetime
    limits: dict[str, Any] = field(default_factory=dict)
    #: Source name (None: every source) -> role.
    roles: dict[str | None, Role] = field(default_factory=dict)


def _info(session: Session, user: User) -> UserInfo:
    rows = session.execute(
        select(SourceRole.role, Source.name)
        .outerjoin(Source, Source.id == SourceRole.source_id)
        .where(SourceRole.user_id == user.id)
    ).all()
    return UserInfo(
        id=user.id,
        username=user.username,
        active=bool(user.active),
        created_at=user.created_at,
        limits=dict(user.limits or {}),
        roles={name: Role(role) for role, name in rows},
    )


def add_user(
    session: Session, username: str, password_hash: str, *, limits: dict[str, Any] | None = None
) -> int:
    """A new user; a ConflictError when the name is taken."""
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ConflictError(f"a user named {username!r} exists already", value=username)
    user = User(username=username, password_hash=password_hash, limits=dict(limits or {}))
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(f"a user named {username!r} exists already", value=username) from None
    return user.id


def set_password_hash(session: Session, username: str, password_hash: str) -> None:
    _user(session, username).password_hash = password_hash


def set_user_limits(session: Session, username: str, limits: dict[str, Any]) -> None:
    _user(session, username).limits = dict(limits)


def set_active(session: Session, username: str, active: bool) -> None:
    _user(session, username).active = active


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(f"no user named {username!r}", value=username, param="username")
    return user


def get_user(session: Session, username: str) -> UserInfo:
    return _info(session, _user(session, username))


def find_user(session: Session, username: str) -> UserInfo | None:
    user = session.scalar(select(User).where(User.username == username))
    return None if user is None else _info(session, user)


def user_by_id(session: Session, user_id: int) -> UserInfo | None:
    user = session.get(User, user_id)
    return None if user is None else _info(session, user)


def password_hash(session: Session, username: str) -> tuple[int, str] | None:
    """The user's id and password hash, or None (unknown or deactivated user)."""
    row = session.execute(
        select(User.id, User.password_hash).where(User.username == username, User.active)
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


def list_users(session: Session) -> list[UserInfo]:
    return [_info(session, u) for u in session.scalars(select(User).order_by(User.username))]


def set_role(session: Session, username: str, role: Role, source_id: int | None) -> None:
    """Give ``username`` ``role`` on one source (``source_id``) or on all (None)."""
    user = _user(session, username)
    existing = session.scalar(
        select(SourceRole).where(
            SourceRole.user_id == user.id,
            SourceRole.source_id.is_(None)
            if source_id is None
            else SourceRole.source_id == source_id,
        )
    )
    if existing is None:
        session.add(SourceRole(user_id=user.id, source_id=source_id, role=role))
    else:
        existing.role = role


def remove_role(session: Session, username: str, source_id: int | None) -> None:
    user = _user(session, username)
    session.execute(
        delete(SourceRole).where(
            SourceRole.user_id == user.id,
            SourceRole.source_id.is_(None)
            if source_id is None
            else SourceRole.source_id == source_id,
        )
    )


def role_on_source(session: Session, user_id: int, source_id: int) -> Role | None:
    """The strongest of the user's role on this source and on every source; None: none."""
    roles = session.scalars(
        select(SourceRole.role).where(
            SourceRole.user_id == user_id,
            (SourceRole.source_id == source_id) | SourceRole.source_id.is_(None),
        )
    ).all()
    if not roles:
        return None
    return max((Role(r) for r in roles), key=lambda r: r.rank)


def add_token(session: Session, user_id: int, token_sha256: str) -> None:
    session.add(ApiToken(user_id=user_id, token_sha256=token_sha256))
    session.flush()


def user_of_token(session: Session, token_sha256: str) -> UserInfo | None:
    """The active user a token belongs to, or None."""
    user = session.scalar(
        select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_sha256 == token_sha256, User.active)
    )
    return None if user is None else _info(session, user)


def revoke_tokens(session: Session, username: str) -> int:
    """Delete every token of the user; returns how many."""
    user = _user(session, username)
    result = session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    return int(getattr(result, "rowcount", 0) or 0)


def classifier_source(session: Session, classifier_id: int) -> int | None:
    """The id of the source a classifier belongs to (whose roles decide who may deploy it)."""
    from quadrat.store.schema import ClassifierRecord

    found = session.scalar(
        select(ClassifierRecord.source_id).where(ClassifierRecord.id == classifier_id)
    )
    return None if found is None else int(found)


def remove_user(session: Session, username: str) -> None:
    """Delete a user; their roles, tokens and deploy jobs go with them (ON DELETE CASCADE)."""
    user = _user(session, username)
    session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    session.execute(delete(SourceRole).where(SourceRole.user_id == user.id))
    session.delete(user)
    session.flush()
