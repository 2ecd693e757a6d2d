"""URL map: /api/v1/ (REST), /admin/ (Django admin), /health/ (probes).

Anything else under /api/ answers a JSON 404 in the error shape, never HTML.
"""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import urls as account_urls
from accounts.throttles import admin_login_throttled
from integrations import urls as integration_urls
from jobs import urls as job_urls
from organizations import urls as organization_urls
from summaries import urls as summary_urls

from . import health
from .exceptions import api_not_found
from .metrics import metrics_view

# The admin login takes the same passwords as the API: the same brute-force limits apply.
admin.site.login = admin_login_throttled(admin.site.login)

auth_patterns = (
    [*account_urls.urlpatterns, *organization_urls.auth_urlpatterns],
    "auth",
)

api_v1 = [
    path("auth/", include(auth_patterns)),
    path("org/", include("organizations.urls")),
    path("documents/", include((summary_urls.document_urlpatterns, "summaries_documents"))),
    path("documents/", include((integration_urls.document_urlpatterns, "integrations_documents"))),
    path("documents/", include("documents.urls")),
    path("summaries/", include("summaries.urls")),
    path("integrations/", include("integrations.urls")),
    path("webhooks/", include((integration_urls.webhook_urlpatterns, "webhooks"))),
    path("jobs/", include("jobs.urls")),
    path("batches/", include((job_urls.batch_urlpatterns, "batches"))),
    path("templates/", include("templates_app.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's init script as a file: the CSP allows no inline scripts.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    re_path(r"^api/", api_not_found),
    path(settings.ADMIN_URL, admin.site.urls),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics_view, name="metrics"),
]

handler404 = "config.exceptions.handler404"
handler500 = "config.exceptions.handler500"
