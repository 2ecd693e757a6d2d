"""The strict placeholder renderer: validation and pure text substitution."""

from datetime import date

import pytest

from templates_app.placeholders import PlaceholderError, RenderContext, placeholders_in, render

CONTEXT = RenderContext(
    document_title="Plan",
    document_content="Body text",
    document_source="upload",
    document_language="German",
    organization_name="Acme",
    today=date(2026, 11, 26),
)


def test_renders_every_registered_placeholder():
    body = (
        "{{document.title}}|{{ document.content }}|{{  document.source  }}|{{ document.language }}"
        "|{{ organization.name }}|{{ today }}"
    )
    assert render(body, CONTEXT) == "Plan|Body text|upload|German|Acme|2026-11-26"


def test_inserted_text_is_never_rendered_again():
    context = RenderContext(document_content="{{ organization.name }} {{ today }} {0} %s ${x}")
    assert (
        render("Summarize: {{ document.content }}", context)
        == "Summarize: {{ organization.name }} {{ today }} {0} %s ${x}"
    )


def test_format_string_syntax_is_plain_text():
    body = "{0} {document.title} %(x)s ${document.title} {% if x %}"
    assert placeholders_in(body) == []
    assert render(body, CONTEXT) == body


@pytest.mark.parametrize(
    "body",
    [
        "{{ document.__class__ }}",
        "{{ document.title.__class__.__mro__ }}",
        "{{ document.title | upper }}",
        "{{ document.title() }}",
        "{{ document['title'] }}",
        "{{ request.user.password }}",
        "{{ settings.SECRET_KEY }}",
        "{{ }}",
        "{{ document.title }",
        "{{ document.title",
        "document.title }}",
        "{{ {{ today }} }}",
        "{{ Document.Title }}",
    ],
)
def test_unknown_or_malformed_refused_naming_it(body):
    with pytest.raises(PlaceholderError) as exc:
        placeholders_in(body)
    assert exc.value.placeholder
    assert exc.value.placeholder.strip() in body or exc.value.placeholder in body


def test_valid_body_lists_names():
    assert placeholders_in("{{ today }} and {{document.title}}") == ["today", "document.title"]
