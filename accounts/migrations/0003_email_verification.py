import uuid

import django.utils.timezone
from django.db import migrations, models
from django.db.models import F


def verify_existing(apps, schema_editor):
    """Accounts made before verification existed keep their address: they count as verified."""
    apps.get_model("accounts", "User").objects.filter(email_verified_at__isnull=True).update(
        email_verified_at=F("date_joined")
    )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_initial")]

    operations = [
        migrations.AddField(
            model_name="user",
            name="email_verified_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(verify_existing, migrations.RunPython.noop),
        migrations.CreateModel(
            name="RegistrationClaim",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("token_hash", models.CharField(max_length=64, unique=True)),
                ("email", models.EmailField(max_length=254)),
                ("password", models.CharField(max_length=128)),
                ("name", models.CharField(blank=True, max_length=200)),
                ("organization_name", models.CharField(max_length=200)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("expires_at", models.DateTimeField()),
            ],
            options={
                "indexes": [models.Index(fields=["expires_at"], name="registration_claim_expires")],
            },
        ),
    ]
