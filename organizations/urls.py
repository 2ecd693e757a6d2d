from django.urls import path
from rest_framework.routers import SimpleRouter

from summaries.views import UsageView

from . import views

app_name = "org"

router = SimpleRouter()
router.register("users", views.MemberViewSet, basename="user")
router.register("invitations", views.InvitationViewSet, basename="invitation")
router.register("api-keys", views.ApiKeyViewSet, basename="api-key")
router.register("audit", views.AuditViewSet, basename="audit")

urlpatterns = [
    path("", views.OrganizationView.as_view(), name="detail"),
    path("usage/", UsageView.as_view(), name="usage"),
    *router.urls,
]

# Mounted under /api/v1/auth/ next to accounts.urls: registering creates or joins an organization.
auth_urlpatterns = [
    path("register/", views.RegisterView.as_view(), name="register"),
    path("register/confirm/", views.RegisterConfirmView.as_view(), name="register-confirm"),
]
