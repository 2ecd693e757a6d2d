from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

app_name = "integrations"

router = SimpleRouter()
router.register("", views.IntegrationViewSet, basename="integration")

urlpatterns = [
    path("providers/", views.ProviderListView.as_view(), name="providers"),
    path("<uuid:pk>/import/", views.ImportView.as_view(), name="integration-import"),
    path("<slug:provider>/authorize/", views.AuthorizeView.as_view(), name="authorize"),
    path("<slug:provider>/callback/", views.CallbackView.as_view(), name="callback"),
    *router.urls,
]

# Mounted under /api/v1/documents/.
document_urlpatterns = [path("import-url/", views.UrlImportView.as_view(), name="document-import-url")]

# Mounted under /api/v1/webhooks/: event webhooks (integrations.event_webhooks).
webhook_router = SimpleRouter()
webhook_router.register("", views.WebhookSubscriptionViewSet, basename="webhook")
webhook_urlpatterns = webhook_router.urls
