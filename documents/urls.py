from rest_framework.routers import SimpleRouter

from . import views

app_name = "documents"

router = SimpleRouter()
router.register("", views.DocumentViewSet, basename="document")

urlpatterns = router.urls
