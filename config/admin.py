"""The admin site: Precis' own, with the organization's dashboard as its index."""

from __future__ import annotations

from django.contrib import admin


class PrecisAdminSite(admin.AdminSite):
    site_header = "Precis administration"
    site_title = "Precis"
    index_title = "Dashboard"
    index_template = "precis_admin/index.html"

    def each_context(self, request):
        context = super().each_context(request)
        org = getattr(request.user, "org", None) if request.user.is_authenticated else None
        if org is not None:
            context["site_header"] = f"{self.site_header} · {org.name}"
        return context

    def index(self, request, extra_context=None):
        from organizations.tenant_admin import is_org_admin

        from . import dashboard

        extra_context = dict(extra_context or {})
        if request.user.is_superuser or is_org_admin(request):
            org_id = None if request.user.is_superuser else request.user.org_id
            figures = dashboard.figures(org_id)
            extra_context.update(
                dashboard=figures,
                charts=dashboard.charts(figures),
                dashboard_scope="every organization" if org_id is None else request.user.org.name,
            )
        return super().index(request, extra_context)
