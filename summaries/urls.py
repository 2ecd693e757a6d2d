from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

app_name = "summaries"

router = SimpleRouter()
router.register("", views.SummaryViewSet, basename="summary")

urlpatterns = [
    path("<uuid:pk>/publish/", views.SummaryPublishView.as_view(), name="summary-publish"),
    *router.urls,
]

# Mounted under /api/v1/documents/: summarizing is a summaries concern, on a document URL.
document_urlpatterns = [
    path("summarize/", views.DocumentBatchSummarizeView.as_view(), name="document-batch-summarize"),
    path("<uuid:pk>/summarize/", views.DocumentSummarizeView.as_view(), name="document-summarize"),
]
