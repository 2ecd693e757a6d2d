"""Cross-cutting API behaviour: error shape, request ids, parsing, pagination, schema, health."""

import json

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import Role, User
from conftest import assert_error_shape

pytestmark = pytest.mark.django_db

ME = "/api/v1/auth/me/"
ORG = "/api/v1/org/"
USERS = "/api/v1/org/users/"


class TestErrorShape:
    @pytest.mark.parametrize("path", ["/api/nothing", "/api/v1/nothing/", "/api/v1/org/users/not-a-uuid/x/"])
    def test_unknown_api_paths_are_json_404(self, anon, path):
        assert_error_shape(anon.get(path), 404, "not_found")

    def test_405_in_error_shape(self, tenant):
        assert_error_shape(tenant.client().delete(ORG), 405, "method_not_allowed")

    def test_415_for_unsupported_media_type(self, tenant):
        response = tenant.client().generic("PATCH", ORG, "name=x", content_type="application/x-www-form-urlencoded")
        assert_error_shape(response, 415, "unsupported_media_type")

    @override_settings(ROOT_URLCONF="config.tests.urls_faults", DEBUG=False)
    def test_crash_is_json_500_without_traceback(self):
        response = APIClient(raise_request_exception=False).get("/api/v1/_test/crash/")
        body = assert_error_shape(response, 500)
        assert body["type"] == "server_error"
        assert "secret internal detail" not in response.content.decode()
        assert "Traceback" not in response.content.decode()

    @override_settings(ROOT_URLCONF="config.tests.urls_faults")
    def test_database_outage_is_503_naming_it(self):
        assert_error_shape(
            APIClient(raise_request_exception=False).get("/api/v1/_test/db-down/"), 503, "database_unavailable"
        )


class TestParsing:
    def post_raw(self, client, body: bytes, path=ORG, method="PATCH"):
        return client.generic(method, path, body, content_type="application/json")

    def test_invalid_json(self, tenant):
        assert_error_shape(self.post_raw(tenant.client(), b'{"name": '), 400, "parse_error")

    def test_invalid_utf8(self, tenant):
        assert_error_shape(self.post_raw(tenant.client(), b'{"name": "\xff\xfe"}'), 400, "invalid_utf8")

    def test_nan_is_not_json(self, tenant):
        assert_error_shape(self.post_raw(tenant.client(), b'{"name": NaN}'), 400, "parse_error")

    def test_nul_in_string_refused_naming_the_field(self, tenant):
        response = self.post_raw(tenant.client(), b'{"name": "a\\u0000b"}')
        assert_error_shape(response, 400, "invalid_characters", "name")
        tenant.org.refresh_from_db()
        assert tenant.org.name == "Acme"

    def test_lone_surrogate_refused(self, tenant):
        assert_error_shape(self.post_raw(tenant.client(), b'{"name": "\\ud800"}'), 400, "invalid_characters", "name")

    def test_non_object_body(self, tenant):
        assert_error_shape(self.post_raw(tenant.client(), b"[1, 2]"), 400)
        assert_error_shape(self.post_raw(tenant.client(), b'"text"'), 400)

    def test_deeply_nested_json(self, tenant):
        body = b"[" * 100_000 + b"]" * 100_000
        assert_error_shape(self.post_raw(tenant.client(), body), 400)

    @override_settings(MAX_JSON_BODY_BYTES=1024)
    def test_oversized_body_413(self, tenant):
        body = json.dumps({"name": "x" * 5000}).encode()
        assert_error_shape(self.post_raw(tenant.client(), body), 413, "body_too_large")

    def test_huge_string_field_400(self, tenant):
        assert_error_shape(self.post_raw(tenant.client(), json.dumps({"name": "x" * 100_000}).encode()), 400)

    def test_unicode_round_trip(self, tenant):
        name = "Ünïcødé 東京 مرحبا 🚀 e\u0301 𝔘"
        response = tenant.client().patch(ORG, {"name": name}, format="json")
        assert response.status_code == 200
        assert tenant.client().get(ORG).json()["name"] == name


class TestRequestID:
    def test_generated_when_absent(self, anon):
        response = anon.get("/health/live")
        assert len(response["X-Request-ID"]) == 32

    def test_sane_id_echoed(self, tenant):
        response = tenant.client().get(ORG, HTTP_X_REQUEST_ID="abc-123.def:9")
        assert response["X-Request-ID"] == "abc-123.def:9"

    @pytest.mark.parametrize("bad", ["a" * 200, "has space", "<script>", "new\nline"])
    def test_insane_id_replaced(self, anon, bad):
        response = anon.get(ME, HTTP_X_REQUEST_ID=bad)
        assert response["X-Request-ID"] != bad and len(response["X-Request-ID"]) == 32

    def test_present_on_errors_and_admin(self, anon):
        assert "X-Request-ID" in anon.get("/api/v1/nothing/")
        assert "X-Request-ID" in anon.get("/admin/login/")


class TestPagination:
    @pytest.fixture
    def crowd(self, tenant):
        User.objects.bulk_create(
            [User(email=f"u{i:03d}@acme.test", org=tenant.org, role=Role.MEMBER) for i in range(118)]
        )
        return tenant  # 120 members in all

    def test_default_page_size(self, crowd):
        body = crowd.client().get(USERS).json()
        assert len(body["results"]) == 20 and body["next"] and body["previous"] is None

    @pytest.mark.parametrize(
        "size, expected", [("100", 100), ("1000", 100), ("5", 5), ("abc", 20), ("-3", 20), ("0", 20)]
    )
    def test_page_size_clamped_never_an_error(self, crowd, size, expected):
        response = crowd.client().get(USERS, {"page_size": size})
        assert response.status_code == 200
        assert len(response.json()["results"]) == expected

    def test_cursor_walk_sees_every_row_once(self, crowd):
        client, url, seen = crowd.client(), f"{USERS}?page_size=50", []
        while url:
            body = client.get(url).json()
            seen += [row["id"] for row in body["results"]]
            url = body["next"]
        assert len(seen) == len(set(seen)) == 120

    def test_bad_cursor_is_404_in_shape(self, crowd):
        assert_error_shape(crowd.client().get(USERS, {"cursor": "garbage"}), 404)


class TestSchema:
    def test_openapi_schema_lists_endpoints(self, anon):
        response = anon.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
        assert response.status_code == 200
        schema = response.json()
        for path in ["/api/v1/auth/login/", "/api/v1/auth/register/", "/api/v1/org/", "/api/v1/org/users/{id}/"]:
            assert path in schema["paths"], path
        # errors are described too
        assert "401" in schema["paths"]["/api/v1/auth/me/"]["get"]["responses"]

    def test_schema_generates_without_warnings(self, tmp_path):
        from django.core.management import call_command

        call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
        assert "409" in (tmp_path / "schema.yaml").read_text()

    def test_swagger_ui(self, anon):
        response = anon.get("/api/v1/docs/")
        assert response.status_code == 200
        assert b"swagger" in response.content.lower()


class TestHealth:
    def test_live(self, anon):
        assert anon.get("/health/live").json() == {"status": "ok"}

    def test_ready_checks_every_dependency(self, anon):
        response = anon.get("/health/ready")
        assert response.status_code == 200, response.content
        assert response.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "ok", "channel_layer": "ok"}

    @override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    def test_ready_names_what_failed(self, anon):
        response = anon.get("/health/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["broker"].startswith("error:")
        assert body["checks"]["database"] == "ok"
