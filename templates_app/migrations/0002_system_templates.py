"""Ship the system templates every organization can use (read-only)."""

import uuid

from django.db import migrations

EXECUTIVE_SUMMARY_ID = uuid.UUID("5b0c7d3e-1f3a-4c8e-9a51-000000000001")

SYSTEM_TEMPLATES = [
    (
        EXECUTIVE_SUMMARY_ID,
        "Executive summary",
        "A short, decision-oriented overview for busy readers. The default.",
        "Write an executive summary of the document below for {{ organization.name }}.\n"
        "Lead with the main conclusion, then the key facts, risks and numbers. "
        "Use plain language, at most three short paragraphs.\n\n"
        "Title: {{ document.title }}\n\n{{ document.content }}",
    ),
    (
        uuid.UUID("5b0c7d3e-1f3a-4c8e-9a51-000000000002"),
        "Bullet points",
        "The key points as a concise bulleted list.",
        "Summarize the document below as 5 to 10 concise bullet points, most important first. "
        "Keep names, dates and figures exact.\n\nTitle: {{ document.title }}\n\n{{ document.content }}",
    ),
    (
        uuid.UUID("5b0c7d3e-1f3a-4c8e-9a51-000000000003"),
        "Decisions and action items",
        "What was decided, and who does what by when.",
        "From the document below, list (1) the decisions that were made and (2) the action items, "
        "each with its owner and due date when the document gives them. Say 'none' for an empty section.\n\n"
        "Title: {{ document.title }}\n\n{{ document.content }}",
    ),
    (
        uuid.UUID("5b0c7d3e-1f3a-4c8e-9a51-000000000004"),
        "TL;DR",
        "One or two sentences.",
        "Give a one- or two-sentence TL;DR of the document below.\n\n{{ document.content }}",
    ),
]


def create(apps, schema_editor):
    Template = apps.get_model("templates_app", "Template")
    for pk, name, description, body in SYSTEM_TEMPLATES:
        Template._base_manager.update_or_create(pk=pk, defaults={"name": name, "description": description, "body": body, "org": None})


def remove(apps, schema_editor):
    Template = apps.get_model("templates_app", "Template")
    Template._base_manager.filter(pk__in=[pk for pk, *_ in SYSTEM_TEMPLATES]).delete()


class Migration(migrations.Migration):
    dependencies = [("templates_app", "0001_initial")]

    operations = [migrations.RunPython(create, remove)]
