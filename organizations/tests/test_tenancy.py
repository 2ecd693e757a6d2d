"""The tenancy kernel: fail-closed scoped managers and the sealed viewset mixin."""

import pytest
from django_scopes import ScopeError
from rest_framework import viewsets

from organizations.models import Invitation
from organizations.tenancy import TenantViewSetMixin, dangerously_unscoped, org_scope

pytestmark = pytest.mark.django_db


def make_invitation(tenant, email):
    return Invitation.unscoped_objects.create(org=tenant.org, email=email, token_hash=email, created_by=tenant.admin)


def test_query_outside_scope_raises(tenant):
    make_invitation(tenant, "a@x.test")
    with pytest.raises(ScopeError):
        list(Invitation.objects.all())
    with pytest.raises(ScopeError):
        Invitation.objects.filter(email="a@x.test").exists()
    with pytest.raises(ScopeError):
        Invitation.objects.count()


def test_scope_returns_only_that_org(tenant, other_tenant):
    mine = make_invitation(tenant, "a@x.test")
    make_invitation(other_tenant, "b@x.test")
    with org_scope(tenant.org.id):
        assert list(Invitation.objects.all()) == [mine]
        assert Invitation.objects.filter(email="b@x.test").count() == 0
    with dangerously_unscoped():
        assert Invitation.objects.count() == 2
    with pytest.raises(ScopeError):  # the scope ends with the block
        Invitation.objects.count()


def test_scope_is_reset_after_an_exception(tenant):
    with pytest.raises(RuntimeError), org_scope(tenant.org.id):
        raise RuntimeError("boom")
    with pytest.raises(ScopeError):
        Invitation.objects.count()


@pytest.mark.parametrize("method", ["get_queryset", "get_object", "perform_create", "dispatch", "initial"])
def test_viewsets_cannot_bypass_the_tenant_queryset(method):
    with pytest.raises(TypeError, match=method):
        type("Sneaky", (TenantViewSetMixin, viewsets.ModelViewSet), {method: lambda self, *a, **k: None})


def test_refine_hook_is_allowed():
    class Fine(TenantViewSetMixin, viewsets.ModelViewSet):
        model = Invitation

        def refine_queryset(self, queryset):
            return queryset.filter(role="admin")

    assert Fine.model is Invitation
