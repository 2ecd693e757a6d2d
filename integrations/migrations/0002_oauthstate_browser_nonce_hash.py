from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0001_initial"),
    ]

    operations = [
        # States open at deploy time have no nonce, so they can no longer finish: their
        # admins start again (a state lives OAUTH_STATE_TTL_S at most).
        migrations.AddField(
            model_name="oauthstate",
            name="browser_nonce_hash",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
    ]
