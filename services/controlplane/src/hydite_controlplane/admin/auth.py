"""Who is calling an admin route, and what they may do.

- the master key (HYDITE_MASTER_KEY): everything;
- a key whose user has role proxy_admin: everything but rotating the master key;
- proxy_admin_viewer: read everything;
- a team admin (role "admin" in a team's members_with_roles): keys and members of that team;
- a key of an internal_user: also its user's own personal keys (create, change, delete, read), an
  internal_user_viewer's: read them;
- any other valid key: itself (/key/info, /key/health) and its own spend.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from enum import StrEnum

from aiohttp import web

from hydite_common.allowlists import route_permitted
from hydite_common.errors import AuthenticationError, PermissionDeniedError
from hydite_common.keys import hash_key, key_from_headers
from hydite_controlplane.admin.validation import check_query
from hydite_controlplane.appkeys import SESSIONS, SETTINGS
from hydite_controlplane.models.keys import VirtualKeyRow
from hydite_controlplane.models.principals import UserRow
from hydite_controlplane.store.keys import get_key
from hydite_controlplane.store.principals import teams_administered_by


class Role(StrEnum):
    """Admin roles, from most to least powerful."""

    MASTER = "master"
    PROXY_ADMIN = "proxy_admin"
    PROXY_ADMIN_VIEWER = "proxy_admin_viewer"
    INTERNAL_USER = "internal_user"
    INTERNAL_USER_VIEWER = "internal_user_viewer"


USER_ROLES = frozenset(r.value for r in Role if r is not Role.MASTER)
_WRITERS = frozenset({Role.MASTER, Role.PROXY_ADMIN})
_READERS = _WRITERS | {Role.PROXY_ADMIN_VIEWER}


@dataclass(frozen=True)
class AdminCaller:
    """The authenticated caller of an admin route."""

    identity: str  # what the audit trail records; never the key itself
    role: Role
    key: VirtualKeyRow | None = None
    admin_team_ids: frozenset[str] = field(default_factory=frozenset)
    user: UserRow | None = None  # the key's user, when it exists

    @property
    def own_user_id(self) -> str | None:
        """The user whose own keys this caller reads (and, as an internal_user, writes): the key's
        user when it exists and has an internal role; None for everyone else."""
        if self.user is None or self.role not in (Role.INTERNAL_USER, Role.INTERNAL_USER_VIEWER):
            return None
        return self.user.user_id

    @property
    def writes_own_keys(self) -> bool:
        """May create, change and delete its own user's personal keys (LiteLLM's internal_user)."""
        return self.role is Role.INTERNAL_USER and self.own_user_id is not None

    @property
    def can_write(self) -> bool:
        """May change anything."""
        return self.role in _WRITERS

    @property
    def can_read(self) -> bool:
        """May read anything."""
        return self.role in _READERS

    @property
    def key_hash(self) -> str | None:
        """The hash of the caller's own key (None for the master key)."""
        return self.key.token if self.key else None

    def require_write(self) -> None:
        """403 unless the caller may change anything."""
        if not self.can_write:
            raise PermissionDeniedError("this route needs the master key or a proxy_admin", code="admin_only")

    def require_read(self) -> None:
        """403 unless the caller may read anything."""
        if not self.can_read:
            raise PermissionDeniedError("this route needs an admin or admin-viewer key", code="admin_only")

    def manages_team(self, team_id: str | None) -> bool:
        """Whether the caller may manage keys and members of team_id."""
        return self.can_write or (team_id is not None and team_id in self.admin_team_ids)

    def require_team(self, team_id: str | None) -> None:
        """403 unless the caller is an admin or an admin of team_id."""
        if not self.manages_team(team_id):
            raise PermissionDeniedError(
                "this needs an admin, or an admin of the team concerned", code="team_admin_only"
            )


async def admin_caller(request: web.Request) -> AdminCaller:
    """Authenticate the caller: the master key, or a valid virtual key and its user's role.

    Every admin route starts here, so this is also where its query parameters are checked
    (check_query) before any handler reads them.
    """
    check_query(request)
    key = key_from_headers(request.headers)
    if key is None:
        raise AuthenticationError(
            "no API key provided; send 'Authorization: Bearer <key>'", code="missing_api_key"
        )
    if not _well_formed(key):
        raise AuthenticationError("Invalid API key provided")
    if hmac.compare_digest(key.encode(), request.app[SETTINGS].master_key.encode()):
        return AdminCaller(identity="master_key", role=Role.MASTER)
    async with request.app[SESSIONS]() as session:
        row = await get_key(hash_key(key), session=session)
        if row is None:
            raise AuthenticationError("Invalid API key provided")
        if row.blocked:
            raise AuthenticationError("this API key is blocked", code="key_blocked")
        if row.expires is not None and row.expires.timestamp() <= time.time():
            raise AuthenticationError("this API key has expired", code="key_expired")
        if not route_permitted(row.allowed_routes, request.path):
            raise PermissionDeniedError(f"this key may not call {request.path}", code="route_not_allowed")
        role = Role.INTERNAL_USER
        admin_teams: frozenset[str] = frozenset()
        user: UserRow | None = None
        if row.user_id:
            user = await session.get(UserRow, row.user_id)
            if user is not None:
                if user.blocked:
                    raise PermissionDeniedError("this key's user is blocked", code="user_blocked")
                role = Role(user.user_role) if user.user_role in USER_ROLES else Role.INTERNAL_USER
            admin_teams = await teams_administered_by(row.user_id, session=session)
    return AdminCaller(
        identity=f"key:{row.token[:12]}", role=role, key=row, admin_team_ids=admin_teams, user=user
    )


def _well_formed(key: str) -> bool:
    """Whether key could be a key at all: UTF-8 (aiohttp keeps undecodable header bytes as
    surrogates) and without NUL."""
    try:
        key.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in key
