from rest_framework.routers import SimpleRouter

from . import views

app_name = "jobs"

router = SimpleRouter()
router.register("", views.JobViewSet, basename="job")

urlpatterns = router.urls

# Mounted at /api/v1/batches/.
batch_router = SimpleRouter()
batch_router.register("", views.BatchViewSet, basename="batch")
batch_urlpatterns = batch_router.urls
