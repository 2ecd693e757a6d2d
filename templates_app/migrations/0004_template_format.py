"""Templates say what they want in a form every provider honours: format, length, what to favour."""

from django.db import migrations, models

# (format, default_max_words, favour) of each system template (migration 0002).
SYSTEM_INTENT = {
    "5b0c7d3e-1f3a-4c8e-9a51-000000000001": ("prose", 150, []),  # Executive summary
    "5b0c7d3e-1f3a-4c8e-9a51-000000000002": ("bullets", 120, []),  # Bullet points
    "5b0c7d3e-1f3a-4c8e-9a51-000000000003": ("bullets", 150, ["decisions", "actions", "owners", "dates"]),
    "5b0c7d3e-1f3a-4c8e-9a51-000000000004": ("short", 40, []),  # TL;DR
}


def set_intent(apps, schema_editor):
    Template = apps.get_model("templates_app", "Template")
    for pk, (format, max_words, favour) in SYSTEM_INTENT.items():
        Template._base_manager.filter(pk=pk).update(format=format, default_max_words=max_words, favour=favour)


class Migration(migrations.Migration):
    dependencies = [("templates_app", "0003_system_templates_language")]

    operations = [
        migrations.AddField(
            model_name="template",
            name="format",
            field=models.CharField(
                choices=[("prose", "Prose"), ("bullets", "Bullet points"), ("short", "Short (one or two sentences)")],
                default="prose",
                help_text="How the summary is laid out: a paragraph, a bulleted list, or one or two sentences.",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="template",
            name="default_max_words",
            field=models.PositiveIntegerField(
                default=150, help_text="The summary's length in words when a request does not say (10–2000)."
            ),
        ),
        migrations.AddField(
            model_name="template",
            name="favour",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="What the built-in summarizer prefers: any of decisions, actions, dates, owners, numbers.",
            ),
        ),
        migrations.RunPython(set_intent, migrations.RunPython.noop),
    ]
