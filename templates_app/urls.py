from rest_framework.routers import SimpleRouter

from . import views

app_name = "templates"

router = SimpleRouter()
router.register("", views.TemplateViewSet, basename="template")

urlpatterns = router.urls
