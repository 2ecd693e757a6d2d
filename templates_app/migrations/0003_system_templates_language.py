"""The system templates ask for the summary in the document's own language."""

import importlib

from django.db import migrations

_initial = importlib.import_module("templates_app.migrations.0002_system_templates")

LANGUAGE = "Write in the language the document is written in."


def _with_language(body: str) -> str:
    instructions, gap, rest = body.partition("\n\n")
    return f"{instructions} {LANGUAGE}{gap}{rest}"


SYSTEM_TEMPLATES = [
    (pk, name, description, _with_language(body)) for pk, name, description, body in _initial.SYSTEM_TEMPLATES
]


def create(apps, schema_editor):
    Template = apps.get_model("templates_app", "Template")
    for pk, name, description, body in SYSTEM_TEMPLATES:
        Template._base_manager.update_or_create(
            pk=pk, defaults={"name": name, "description": description, "body": body, "org": None}
        )


class Migration(migrations.Migration):
    dependencies = [("templates_app", "0002_system_templates")]

    operations = [migrations.RunPython(create, _initial.create)]
