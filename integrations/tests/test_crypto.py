"""Encryption at rest and key rotation."""

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from integrations import crypto
from integrations.models import Integration

pytestmark = pytest.mark.django_db


def make(tenant, token="secret-token") -> Integration:
    integration = Integration(org=tenant.org, provider="notion", name="n")
    integration.access_token = token
    integration.config = {"secret": "hook-secret"}
    integration.save()
    return integration


def test_rotation_re_encrypts_with_the_newest_key(tenant, settings, capsys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    integration = make(tenant)
    before = Integration.unscoped_objects.get(pk=integration.pk).access_token_encrypted

    settings.FIELD_ENCRYPTION_KEYS = [new, old]  # new first, old still readable
    assert Integration.unscoped_objects.get(pk=integration.pk).access_token == "secret-token"
    call_command("rotate_encryption_keys", "--dry-run", "--no-progress")
    assert Integration.unscoped_objects.get(pk=integration.pk).access_token_encrypted == before
    call_command("rotate_encryption_keys", "--no-progress")
    assert "rotated 1 row(s)" in capsys.readouterr().out

    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key is gone: everything still decrypts
    rotated = Integration.unscoped_objects.get(pk=integration.pk)
    assert rotated.access_token == "secret-token" and rotated.config == {"secret": "hook-secret"}
    call_command("rotate_encryption_keys", "--no-progress")  # idempotent
    assert "rotated 0 row(s); 1 already current" in capsys.readouterr().out


def test_undecryptable_values_fail_the_command(tenant, settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    make(tenant)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError) as exc:
        call_command("rotate_encryption_keys", "--no-progress")
    assert exc.value.returncode == 1


def test_missing_or_invalid_keys_are_clear_errors(settings):
    settings.FIELD_ENCRYPTION_KEYS = ["not-a-key"]
    with pytest.raises(ImproperlyConfigured, match="not a valid Fernet key"):
        crypto.check_keys()
    settings.FIELD_ENCRYPTION_KEYS = []
    settings.EMBEDDED = False
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS is required"):
        crypto.check_keys()
    settings.EMBEDDED = True  # make run: a development key derived from SECRET_KEY
    assert crypto.decrypt(crypto.encrypt("x")) == "x"
