"""API keys: an organization's credentials for servers and scripts.

A key reads `pk_<prefix>_<secret>`: 8 characters of prefix (stored, shown in lists) and 32
bytes of secret. Only the SHA-256 of the whole key is stored (the key has 256 bits of
entropy: a fast hash is enough) and it is shown once, in the response that creates it.

`Authorization: Bearer pk_…` authenticates REST requests (ApiKeyAuthentication) and
WebSocket connections (realtime.consumers) as the key's creator, with the key's role capped
by the creator's current role, in the creator's organization. The creator must still be
active there; a revoked or expired key is refused at once, on every request (one indexed
lookup, no cache). A `read` key may only GET/HEAD/OPTIONS. Keys are managed only with a
person's sign-in, never with another key, and never authenticate the admin site.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from rest_framework import exceptions

from accounts.models import Role, User
from config.errors import Forbidden, ValidationFailed

from . import audit
from .models import ApiKey, Organization

PREFIX = "pk_"
LAST_USED_EVERY_S = 60  # last_used_at is written at most this often per key
ROLE_RANK = {Role.MEMBER: 0, Role.ADMIN: 1}


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def looks_like_key(token: str) -> bool:
    return token.startswith(PREFIX)


def effective_role(key: ApiKey, creator: User) -> str:
    """The key's role, never more than its creator's now."""
    return key.role if ROLE_RANK.get(key.role, 0) <= ROLE_RANK.get(creator.role, 0) else creator.role


def api_key_create(
    *, org: Organization, user: User, name: str, role: str, scopes: list[str], expires_at=None
) -> tuple[ApiKey, str]:
    """A new key and its only copy in plain text."""
    if ROLE_RANK[role] > ROLE_RANK.get(user.role, 0):
        raise Forbidden("A key cannot have more rights than its creator.", "role_too_high")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed("The expiry must be in the future.", "invalid", "expires_at")
    prefix = secrets.token_hex(4)
    key = f"{PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey.objects.create(
        org=org,
        name=name.strip(),
        prefix=prefix,
        key_hash=key_hash(key),
        role=role,
        scopes=sorted(set(scopes)),
        expires_at=expires_at,
        created_by=user,
    )
    audit.record("api_key.created", org=org, target=row, changes={"role": [None, role], "scopes": [None, row.scopes]})
    return row, key


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    """Stop the key at once: REST refuses it from the next request, and its open sockets
    are closed when this commits."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at", "updated_at"])
        audit.record("api_key.revoked", org=key.org_id, target=key)
        transaction.on_commit(lambda: _close_sockets(key.pk))
    return key


def socket_group(key_id) -> str:
    return f"apikey.{key_id}"


def _close_sockets(key_id) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    try:
        async_to_sync(get_channel_layer().group_send)(socket_group(key_id), {"type": "credential.revoked"})
    except Exception:  # the channel layer is down: the sockets' periodic recheck ends them
        import logging

        logging.getLogger(__name__).warning("could not reach the sockets of revoked key %s", key_id, exc_info=True)


def authenticate_key(token: str) -> tuple[ApiKey, User]:
    """The key and the user it acts as (its role already capped), or AuthenticationFailed."""
    invalid = exceptions.AuthenticationFailed("The API key is invalid, revoked or expired.", code="invalid_api_key")
    if len(token) > 200:
        raise invalid
    # The key with its creator and their organization in one query, unordered (no ORDER BY
    # to build): this runs on every request a key makes.
    found = list(ApiKey.unscoped_objects.filter(key_hash=key_hash(token)).select_related("created_by__org")[:1])
    key = found[0] if found else None
    if key is None or not key.is_usable:
        raise invalid
    user = key.created_by
    if not user.is_active or user.org_id != key.org_id or user.org is None or not user.org.is_active:
        raise invalid
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > timedelta(seconds=LAST_USED_EVERY_S):
        ApiKey.unscoped_objects.filter(pk=key.pk).update(last_used_at=now)
    user.role = effective_role(key, user)  # in memory only: the request acts with the key's role
    return key, user


class ApiKeyAuthentication:
    """DRF authentication for `Authorization: Bearer pk_…` (other bearer tokens: the JWT's)."""

    SAFE = ("GET", "HEAD", "OPTIONS")

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not looks_like_key(token.strip()):
            return None
        import structlog

        key, user = authenticate_key(token.strip())
        if request.method not in self.SAFE and ApiKey.Scope.WRITE not in key.scopes:
            raise exceptions.PermissionDenied("This API key is read-only.", code="read_only_key")
        request._request.org = user.org
        structlog.contextvars.bind_contextvars(org_id=str(user.org_id), user_id=str(user.pk), api_key=key.prefix)
        return user, key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
