"""Operator commands: create_org and the demo bootstrap used by `make run`."""

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Role, User
from organizations.models import Organization

pytestmark = pytest.mark.django_db


def test_create_org(capsys):
    call_command("create_org", "Acme Widgets", "Boss@Acme.test", "--password", "a-strong-passphrase-1")
    org = Organization.objects.get(slug="acme-widgets")
    admin = User.objects.get(email="boss@acme.test")
    assert admin.org == org and admin.role == Role.ADMIN and admin.check_password("a-strong-passphrase-1")
    assert "acme-widgets" in capsys.readouterr().out


def test_create_org_duplicate_email_is_a_clear_error():
    call_command("create_org", "One", "boss@acme.test", "--password", "a-strong-passphrase-1")
    with pytest.raises(CommandError, match="email: A user with this email already exists"):
        call_command("create_org", "Two", "BOSS@acme.test", "--password", "a-strong-passphrase-1")
    assert not Organization.objects.filter(name="Two").exists()


def test_create_org_weak_password():
    with pytest.raises(CommandError, match="password"):
        call_command("create_org", "One", "boss@acme.test", "--password", "123")
    assert not Organization.objects.exists()


def test_create_org_without_password_and_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(CommandError, match="--password"):
        call_command("create_org", "One", "boss@acme.test")


def test_ensure_demo_creates_once_and_prints_a_working_login(tmp_path, settings, capsys):
    settings.VAR_DIR = tmp_path
    call_command("ensure_demo")
    first = capsys.readouterr().out
    password = (tmp_path / "demo-login.txt").read_text().strip()
    assert f"admin@demo.precis.test / {password}" in first
    call_command("ensure_demo")
    assert f"/ {password}" in capsys.readouterr().out
    assert Organization.objects.filter(name="Demo").count() == 1
    assert User.objects.get(email="admin@demo.precis.test").check_password(password)
