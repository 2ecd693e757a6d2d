"""Template API: system templates read-only, members create, creator/admin change."""

import pytest

from conftest import assert_error_shape
from templates_app.models import Template

pytestmark = pytest.mark.django_db

URL = "/api/v1/templates/"
SYSTEM_ID = "5b0c7d3e-1f3a-4c8e-9a51-000000000001"


def make(client, **body):
    payload = {"name": "Mine", "body": "Summarize {{ document.content }}"}
    payload.update(body)
    return client.post(URL, payload, format="json")


def test_list_has_system_and_own_only(tenant, other_tenant):
    make(other_tenant.client(), name="Theirs")
    make(tenant.client(tenant.member), name="Ours")
    rows = tenant.client(tenant.member).get(URL, {"page_size": 100}).json()["results"]
    names = {r["name"]: r["is_system"] for r in rows}
    assert names == {
        "Ours": False,
        "Executive summary": True,
        "Bullet points": True,
        "Decisions and action items": True,
        "TL;DR": True,
    }


def test_member_creates(tenant):
    response = make(tenant.client(tenant.member), description="d")
    assert response.status_code == 201, response.content
    template = Template.unscoped_objects.get(pk=response.json()["id"])
    assert template.org == tenant.org and template.created_by == tenant.member
    assert response.json()["is_system"] is False


@pytest.mark.parametrize(
    "body, code",
    [
        ("Hi {{ document.__class__ }}", "invalid_placeholder"),
        ("Hi {{ document.title }", "invalid_placeholder"),
        ("{{ secrets }}", "invalid_placeholder"),
        ("   ", "blank"),
    ],
)
def test_bad_placeholders_400_naming_them(tenant, body, code):
    response = make(tenant.client(), body=body)
    error = assert_error_shape(response, 400, code, "body")["errors"][0]
    if code == "invalid_placeholder":
        assert "{{" in error["detail"] or "braces" in error["detail"]
    assert not Template.unscoped_objects.filter(org=tenant.org).exists()


@pytest.mark.parametrize(
    "payload, attr",
    [
        ({"name": ""}, "name"),
        ({"name": 3}, "name"),
        ({"body": "x" * 50_001}, "body"),
        ({"org": None}, "org"),
        ({"is_system": True, "nope": 1}, "nope"),
        ({"format": "haiku"}, "format"),
        ({"format": 3}, "format"),
        ({"default_max_words": 5}, "default_max_words"),
        ({"default_max_words": 10**12}, "default_max_words"),
        ({"default_max_words": "many"}, "default_max_words"),
        ({"favour": ["gossip"]}, "favour.0"),
        ({"favour": "dates"}, "favour"),
        ({"favour": ["dates\u0000"]}, "favour.0"),
    ],
)
def test_bad_input(tenant, payload, attr):
    assert_error_shape(make(tenant.client(), **payload), 400, attr=attr)


def test_names_unique_per_org(tenant, other_tenant):
    assert make(tenant.client()).status_code == 201
    assert_error_shape(make(tenant.client()), 400, "name_taken", "name")
    assert make(other_tenant.client()).status_code == 201
    assert make(tenant.client(), name="Executive summary").status_code == 201  # may shadow a system name


def test_system_templates_read_only_for_everyone(tenant):
    for client in (tenant.client(), tenant.client(tenant.member)):
        assert client.get(f"{URL}{SYSTEM_ID}/").json()["is_system"] is True
        assert_error_shape(client.patch(f"{URL}{SYSTEM_ID}/", {"name": "x"}, format="json"), 403)
        assert_error_shape(client.delete(f"{URL}{SYSTEM_ID}/"), 403)
    assert Template.unscoped_objects.get(pk=SYSTEM_ID).name == "Executive summary"


def test_creator_or_admin_changes(tenant):
    from conftest import make_user

    template_id = make(tenant.client(tenant.member)).json()["id"]
    other_member = make_user(tenant.org)
    from conftest import auth_client

    assert_error_shape(auth_client(other_member).patch(f"{URL}{template_id}/", {"name": "x"}, format="json"), 403)
    assert (
        tenant.client(tenant.member).patch(f"{URL}{template_id}/", {"name": "Renamed"}, format="json").status_code
        == 200
    )
    assert tenant.client().patch(f"{URL}{template_id}/", {"body": "{{ today }}"}, format="json").status_code == 200
    assert_error_shape(auth_client(other_member).delete(f"{URL}{template_id}/"), 403)
    assert tenant.client().delete(f"{URL}{template_id}/").status_code == 204


def test_update_validates_body(tenant):
    template_id = make(tenant.client()).json()["id"]
    response = tenant.client().patch(f"{URL}{template_id}/", {"body": "{{ evil.attr }}"}, format="json")
    assert_error_shape(response, 400, "invalid_placeholder", "body")
    assert "{{ document.content }}" in Template.unscoped_objects.get(pk=template_id).body


def test_placeholders_endpoint(tenant):
    names = {p["name"] for p in tenant.client(tenant.member).get(f"{URL}placeholders/").json()}
    assert names == {
        "document.title",
        "document.content",
        "document.source",
        "document.language",
        "organization.name",
        "today",
    }


def test_format_length_and_favour_round_trip(tenant):
    created = make(
        tenant.client(tenant.member), format="bullets", default_max_words=80, favour=["dates", "owners", "dates"]
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["format"], body["default_max_words"], body["favour"]) == ("bullets", 80, ["dates", "owners"])
    changed = tenant.client(tenant.member).patch(f"{URL}{body['id']}/", {"format": "short"}, format="json").json()
    assert (changed["format"], changed["default_max_words"], changed["favour"]) == ("short", 80, ["dates", "owners"])
    plain = make(tenant.client(), name="Plain").json()
    assert (plain["format"], plain["default_max_words"], plain["favour"]) == ("prose", 150, [])


def test_system_templates_say_what_they_want(tenant):
    rows = tenant.client().get(URL, {"page_size": 100}).json()["results"]
    intent = {r["name"]: (r["format"], r["default_max_words"], r["favour"]) for r in rows if r["is_system"]}
    assert intent == {
        "Executive summary": ("prose", 150, []),
        "Bullet points": ("bullets", 120, []),
        "Decisions and action items": ("bullets", 150, ["decisions", "actions", "owners", "dates"]),
        "TL;DR": ("short", 40, []),
    }
