"""OpenAPI descriptions of our authentication classes (drf-spectacular)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TenantJWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.TenantJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "Access token from /api/v1/auth/login/ (claims: user_id, org_id, role).",
        }


class PublicEndpointScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.PublicEndpointAuthentication"
    name = "public"
    priority = 1

    def get_security_requirement(self, auto_schema):
        return {}

    def get_security_definition(self, auto_schema):
        return {}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "organizations.api_keys.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "pk_…",
            "description": "An organization's API key (POST /api/v1/org/api-keys/), shown once when created.",
        }
