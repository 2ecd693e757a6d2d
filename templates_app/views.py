"""Template API: system templates for everyone (read-only), org templates per org."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from organizations.tenancy import TenantViewSetMixin

from . import services
from .models import Template
from .placeholders import describe
from .serializers import PlaceholderSerializer, TemplateInputSerializer, TemplateOutputSerializer


class TemplateViewSet(
    TenantViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    model = Template
    include_shared_rows = True
    serializer_class = TemplateOutputSerializer

    @extend_schema(request=TemplateInputSerializer, responses={201: TemplateOutputSerializer})
    def create(self, request, *args, **kwargs):
        data = TemplateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        template = services.template_create(org=request.org, created_by=request.user, **data.validated_data)
        return Response(TemplateOutputSerializer(template).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TemplateInputSerializer, responses={200: TemplateOutputSerializer})
    def update(self, request, *args, **kwargs):
        return self._update(request, partial=False)

    @extend_schema(request=TemplateInputSerializer, responses={200: TemplateOutputSerializer})
    def partial_update(self, request, *args, **kwargs):
        return self._update(request, partial=True)

    def _update(self, request, *, partial: bool):
        template = self.get_object()
        services.template_check_writable(template=template, user=request.user)
        data = TemplateInputSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        template = services.template_update(template=template, user=request.user, **data.validated_data)
        return Response(TemplateOutputSerializer(template).data)

    def perform_destroy(self, instance: Template) -> None:
        services.template_delete(template=instance, user=self.request.user)

    @extend_schema(responses={200: PlaceholderSerializer(many=True)})
    @action(detail=False, methods=["get"], pagination_class=None)
    def placeholders(self, request):
        """The placeholders a template body may use."""
        return Response(describe())
