"""The one way in for tenancy in API views (after PostHog's routing mixin and pretix's scopes).

`TenantViewSetMixin` goes first in every viewset's bases that touches
tenant-owned data. It owns `get_queryset`, `get_object` and `perform_create`:

- the queryset is `model.objects` (fail-closed django-scopes manager) filtered
  by `request.org` and evaluated inside `scope(org=request.org.id)`;
- subclasses refine it only through `refine_queryset(queryset)`; defining
  `get_queryset`/`get_object`/`perform_create` in a subclass is a TypeError at
  import time, so a view cannot bypass the tenant filter by accident;
- on create, `org` and `created_by` come from the request, never the payload.

Objects of another organization are simply not in the queryset: they answer
404, exactly like objects that do not exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from django.db import models
from django.db.models import Q
from django_scopes import scope, scopes_disabled
from rest_framework.permissions import BasePermission

from accounts.models import Role

__all__ = [
    "IsOrgAdmin",
    "TenantViewSetMixin",
    "dangerously_unscoped",
    "org_scope",
]

_SEALED = ("get_queryset", "get_object", "perform_create", "dispatch", "initial")


@contextmanager
def org_scope(org_id: UUID | str) -> Iterator[None]:
    """Run a block (a task, a consumer handler, a command) inside one org's scope."""
    with scope(org=org_id):
        yield


@contextmanager
def dangerously_unscoped() -> Iterator[None]:
    """Deliberately span every organization (operator commands, migrations).

    Named so that a reviewer sees it: request and task code must never need it.
    """
    with scopes_disabled():
        yield


class IsOrgAdmin(BasePermission):
    """The authenticated user is an admin of their organization."""

    message = "Only organization admins may do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.role == Role.ADMIN)


class TenantViewSetMixin:
    """Scopes a DRF (generic) view to `request.org`. Must come first in the bases."""

    #: The model served; its rows are filtered by `tenant_field == request.org`.
    model: type[models.Model]
    #: Name of the FK to Organization on `model`.
    tenant_field = "org"
    #: Also show rows shared by every org (tenant field NULL, e.g. system templates).
    #: They stay read-only: writes check ownership in the service.
    include_shared_rows = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _SEALED:
            if name in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} must not override {name}(): refine the queryset in "
                    "refine_queryset() and create through a service instead."
                )

    # -- the scope around the whole request --------------------------------
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, permissions, throttles
        org = getattr(request, "org", None)
        if org is not None:
            self._tenant_scope = scope(org=org.id)
            self._tenant_scope.__enter__()

    def dispatch(self, request, *args, **kwargs):
        self._tenant_scope = None
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            if self._tenant_scope is not None:
                self._tenant_scope.__exit__(None, None, None)
                self._tenant_scope = None

    # -- sealed data access --------------------------------------------------
    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # OpenAPI generation: no request org
            return self.model._default_manager.none()
        org = getattr(self.request, "org", None)
        manager = self.model.objects
        queryset = manager.all() if org is not None else manager.none()
        own = Q(**{self.tenant_field: org})
        if self.include_shared_rows:
            own |= Q(**{f"{self.tenant_field}__isnull": True})
        return self.refine_queryset(queryset.filter(own))

    def refine_queryset(self, queryset):
        """Hook for subclasses: narrow, annotate or prefetch — never widen."""
        return queryset

    def get_object(self):
        return super().get_object()

    def perform_create(self, serializer) -> None:
        extra: dict[str, Any] = {self.tenant_field: self.request.org}
        if any(f.name == "created_by" for f in self.model._meta.get_fields()):
            extra["created_by"] = self.request.user
        serializer.save(**extra)
