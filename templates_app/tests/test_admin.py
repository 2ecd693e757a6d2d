"""Template admin (issue 17): preview a template, as typed, against a document before saving."""

import pytest

from conftest import admin_client, make_user
from documents.models import Document
from templates_app.models import Template

pytestmark = pytest.mark.django_db
ADD = "/admin/templates_app/template/add/"
FORM = {"name": "Board brief", "description": "", "format": "bullets", "default_max_words": "80", "favour": "[]"}


@pytest.fixture
def documents(tenant, other_tenant):
    def make(org, title, content, **extra):
        return Document.unscoped_objects.create(org=org, title=title, content=content, sha256="0" * 64, **extra)

    return {
        "minutes": make(tenant.org, "Board minutes", "The board approved the budget.\n\nMaria owns the rollout."),
        "processing": make(tenant.org, "Still reading", "", status="processing"),
        "theirs": make(other_tenant.org, "Globex secrets", "Their plans."),
    }


def preview(client, url=ADD, **form):
    return client.post(url, {**FORM, "_preview": "Preview", **form})


def test_the_preview_renders_what_was_typed_against_the_document_and_saves_nothing(tenant, documents):
    client = admin_client(tenant.admin)
    body = "Summarize “{{ document.title }}” for {{ organization.name }}:\n{{ document.content }}"
    page = preview(client, body=body, preview_document=str(documents["minutes"].pk), preview_provider="local")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="preview-result"' in html and "Preview only: nothing was saved." in html
    assert "Summarize “Board minutes” for Acme:\nThe board approved the budget." in html
    assert "one call" in html and "≈ " in html and "tokens" in html
    assert 'value="Board brief"' in html  # the form keeps what was typed
    assert not Template.unscoped_objects.filter(name="Board brief").exists()


def test_an_llm_preview_shows_the_numbered_paragraphs_and_a_long_document_s_map_reduce(tenant, documents, settings):
    settings.LLM_API_KEY, settings.LLM_CONTEXT_TOKENS = "test-key", 2000
    long = Document.unscoped_objects.create(
        org=tenant.org, title="Annual report", content="\n\n".join(f"Paragraph {n}. " * 40 for n in range(60))
    )
    client = admin_client(tenant.admin)
    short = preview(
        client, body="{{ document.content }}", preview_document=str(documents["minutes"].pk), preview_provider="openai"
    ).content.decode()
    assert "[1] The board approved the budget.\n\n[2] Maria owns the rollout." in short and "one call" in short
    html = preview(
        client, body="{{ document.content }}", preview_document=str(long.pk), preview_provider="openai"
    ).content.decode()
    assert "map-reduce: " in html and " chunks, " in html


def test_editing_an_existing_template_previews_without_changing_it(tenant, documents):
    template = Template.unscoped_objects.create(org=tenant.org, name="Old", body="Old body {{ document.content }}")
    url = f"/admin/templates_app/template/{template.pk}/change/"
    html = preview(
        admin_client(tenant.admin),
        url,
        name="New name",
        body="New body {{ document.title }}",
        preview_document=str(documents["minutes"].pk),
    ).content.decode()
    assert "New body Board minutes" in html
    template.refresh_from_db()
    assert (template.name, template.body) == ("Old", "Old body {{ document.content }}")


def test_only_the_organization_s_ready_documents_are_offered(tenant, documents):
    html = admin_client(tenant.admin).get(ADD).content.decode()
    assert "Board minutes" in html and "Still reading" not in html and "Globex secrets" not in html
    page = preview(
        admin_client(tenant.admin), body="{{ document.content }}", preview_document=str(documents["theirs"].pk)
    )
    assert "Select a valid choice" in page.content.decode() and "Their plans." not in page.content.decode()


@pytest.mark.parametrize(
    "form, said",
    [
        ({"body": "{{ document.secret }}"}, "Unknown placeholder"),
        ({"body": "{{ document.content }}", "preview_document": ""}, "Pick a document to preview"),
        ({"body": "{{ document.content }}", "preview_provider": "nope"}, "Select a valid choice"),
        ({"body": "{{ document.content }}", "preview_document": "not-a-uuid"}, "is not a valid UUID"),
        ({"body": "Bad\x00 {{ document.content }}"}, "Null characters are not allowed"),
        ({"body": "{{ document.content }}", "default_max_words": "9"}, "Between 10 and 2000 words."),
    ],
)
def test_bad_input_is_said_and_nothing_is_rendered_or_saved(tenant, documents, form, said):
    form = {"preview_document": str(documents["minutes"].pk), **form}
    html = preview(admin_client(tenant.admin), **form).content.decode()
    assert said in html and 'id="preview-result"' not in html
    assert not Template.unscoped_objects.filter(name="Board brief").exists()


def test_another_organization_s_template_cannot_be_previewed(tenant, other_tenant, documents):
    theirs = Template.unscoped_objects.create(org=other_tenant.org, name="Theirs", body="{{ document.content }}")
    response = preview(
        admin_client(tenant.admin),
        f"/admin/templates_app/template/{theirs.pk}/change/",
        body="{{ document.content }}",
        preview_document=str(documents["minutes"].pk),
    )
    assert response.status_code == 302 and "Board minutes" not in response.content.decode()


def test_a_member_cannot_preview(tenant, documents):
    from django.test import Client

    client = Client()
    client.force_login(make_user(tenant.org))
    response = preview(client, body="{{ document.content }}", preview_document=str(documents["minutes"].pk))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_saving_ignores_the_preview_fields(tenant, documents):
    client = admin_client(tenant.admin)
    response = client.post(
        ADD, {**FORM, "body": "{{ document.content }}", "preview_document": str(documents["minutes"].pk)}
    )
    assert response.status_code == 302
    assert Template.unscoped_objects.get(name="Board brief").org_id == tenant.org.id
