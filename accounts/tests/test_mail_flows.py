"""Password reset, verified addresses and invitation mail, end to end: the API, the real
Celery worker and a loopback SMTP server (config/tests/mailbox.py) that the mail reaches."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings
from django.core import mail as django_mail
from model_bakery import baker
from rest_framework.test import APIClient

from accounts import mail
from accounts.models import User
from accounts.tokens import token_pair_for
from config.tests.mailbox import Mailbox, html_of, text_of
from config.tests.process_fixtures import Worker, free_port
from conftest import PASSWORD, assert_error_shape, auth_client, make_user
from organizations.models import Organization

pytestmark = pytest.mark.django_db

RESET = "/api/v1/auth/password/reset/"
RESET_CONFIRM = "/api/v1/auth/password/reset/confirm/"
VERIFY = "/api/v1/auth/email/verify/"
RESEND = "/api/v1/auth/email/verify/resend/"
REGISTER = "/api/v1/auth/register/"
REGISTER_CONFIRM = "/api/v1/auth/register/confirm/"
LOGIN = "/api/v1/auth/login/"
REFRESH = "/api/v1/auth/refresh/"
ME = "/api/v1/auth/me/"
NEW_PASSWORD = "a-brand-new-long-passphrase"


def register(client, email, org="Initech", password=PASSWORD):
    return client.post(REGISTER, {"email": email, "password": password, "organization_name": org}, format="json")


class TestPasswordReset:
    def test_link_resets_once_and_signs_out_everywhere(self, anon, tenant, sent_mail, settings):
        settings.FRONTEND_URL = "https://app.precis.example/"
        old_refresh = token_pair_for(tenant.member)["refresh"]
        with sent_mail(tenant.member.email) as got:
            response = anon.post(RESET, {"email": tenant.member.email.upper()}, format="json")
        assert response.status_code == 202
        text = text_of(got.message)
        assert f"https://app.precis.example/reset-password?token={got.token}" in text
        assert "Acme" in got.message["From"] and "60 minutes" in text
        assert "Choose a new password" in html_of(got.message)

        weak = anon.post(RESET_CONFIRM, {"token": got.token, "password": "123"}, format="json")
        assert_error_shape(weak, 400, "weak_password", "password")
        done = anon.post(RESET_CONFIRM, {"token": got.token, "password": NEW_PASSWORD}, format="json")
        assert done.status_code == 204, done.content
        assert_error_shape(anon.post(REFRESH, {"refresh": old_refresh}, format="json"), 401)
        login = anon.post(LOGIN, {"email": tenant.member.email, "password": NEW_PASSWORD}, format="json")
        assert login.status_code == 200
        again = anon.post(RESET_CONFIRM, {"token": got.token, "password": "yet-another-passphrase"}, format="json")
        assert_error_shape(again, 400, "invalid_token", "token")

    def test_unknown_and_inactive_addresses_answer_the_same_and_get_nothing(self, anon, tenant, sent_mail, mailbox):
        inactive = make_user(tenant.org, email="gone@acme.test", is_active=False)
        known = anon.post(RESET, {"email": tenant.admin.email}, format="json")
        with sent_mail(tenant.member.email):
            unknown = anon.post(RESET, {"email": "nobody@acme.test"}, format="json")
            gone = anon.post(RESET, {"email": inactive.email}, format="json")
            anon.post(RESET, {"email": tenant.member.email}, format="json")
        assert unknown.status_code == gone.status_code == known.status_code == 202
        assert unknown.json() == gone.json() == known.json()
        # The worker sends in order: had the unknown or inactive address been mailed, it
        # would have arrived before the member's mail did.
        assert mailbox.to("nobody@acme.test") == [] and mailbox.to(inactive.email) == []

    def test_without_frontend_url_the_mail_carries_the_token(self, anon, tenant, sent_mail, settings):
        settings.FRONTEND_URL = ""
        with sent_mail(tenant.member.email) as got:
            anon.post(RESET, {"email": tenant.member.email}, format="json")
        assert "://" not in text_of(got.message) and got.token.count(":") == 2

    def test_expired_link_is_refused(self, anon, tenant, sent_mail, settings):
        with sent_mail(tenant.member.email) as got:
            anon.post(RESET, {"email": tenant.member.email}, format="json")
        settings.PASSWORD_RESET_TIMEOUT = -1
        response = anon.post(RESET_CONFIRM, {"token": got.token, "password": NEW_PASSWORD}, format="json")
        assert_error_shape(response, 400, "invalid_token", "token")

    @pytest.mark.parametrize(
        "body, attr",
        [
            ({"email": 5}, "email"),
            ({"email": "not-an-address"}, "email"),
            ({"email": "a\x00b@acme.test"}, "email"),
            ({"email": "a@acme.test", "extra": 1}, "extra"),
            ({}, "email"),
            ({"email": "x" * 10_000 + "@acme.test"}, "email"),
        ],
    )
    def test_bad_requests(self, anon, body, attr):
        assert_error_shape(anon.post(RESET, body, format="json"), 400, attr=attr)

    @pytest.mark.parametrize(
        "body",
        [{"token": "garbage", "password": NEW_PASSWORD}, {"token": 7, "password": NEW_PASSWORD}, {"token": "a\x00"}],
    )
    def test_bad_confirms(self, anon, body):
        assert_error_shape(anon.post(RESET_CONFIRM, body, format="json"), 400)

    def test_invalid_utf8_body(self, anon):
        response = anon.generic("POST", RESET, b'{"email": "\xff@acme.test"}', content_type="application/json")
        assert_error_shape(response, 400)

    def test_throttled_per_address_and_per_ip(self, tenant, settings):
        rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {**rates, "mail_account": "2/hour", "mail_ip": "4/hour"},
        }
        from rest_framework.settings import api_settings
        from rest_framework.throttling import SimpleRateThrottle

        api_settings.reload()
        SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
        try:
            ips = [APIClient(REMOTE_ADDR=f"198.51.100.{n}") for n in range(3)]
            answers = [ips[n].post(RESET, {"email": "target@acme.test"}, format="json").status_code for n in range(3)]
            assert answers == [202, 202, 429]  # the third from a new address still counts for the target
            one_ip = APIClient(REMOTE_ADDR="203.0.113.9")
            answers = [one_ip.post(RESET, {"email": f"u{n}@acme.test"}, format="json").status_code for n in range(5)]
            assert answers == [202, 202, 202, 202, 429]
            throttled = one_ip.post(RESET, {"email": "u9@acme.test"}, format="json")
            assert_error_shape(throttled, 429) and int(throttled["Retry-After"]) > 0
        finally:
            settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
            api_settings.reload()
            SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES


class TestVerification:
    def test_registration_mails_a_link_that_verifies(self, anon, sent_mail):
        with sent_mail("ada@initech.test") as got:
            created = register(anon, "Ada@Initech.test")
        assert created.status_code == 201, created.content
        assert created.json()["user"]["email_verified"] is False
        assert "Initech" in got.message["From"] and "Please confirm" in html_of(got.message)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.json()['access']}")
        assert client.get(ME).json()["email_verified"] is False

        verified = anon.post(VERIFY, {"token": got.token}, format="json")
        assert verified.status_code == 200, verified.content
        assert verified.json() == {"email": "ada@initech.test", "email_verified": True}
        assert client.get(ME).json()["email_verified"] is True
        assert_error_shape(anon.post(VERIFY, {"token": got.token}, format="json"), 400, "invalid_token", "token")
        assert_error_shape(client.post(RESEND), 400, "already_verified")

    def test_resend(self, anon, sent_mail):
        user = make_user(
            baker.make(Organization, name="Initech", slug="initech"), email="late@initech.test", email_verified_at=None
        )
        client = auth_client(user)
        with sent_mail(user.email) as got:
            response = client.post(RESEND)
        assert response.status_code == 202
        assert anon.post(VERIFY, {"token": got.token}, format="json").status_code == 200
        assert_error_shape(anon.post(RESEND), 401)

    def test_unverified_admin_cannot_invite(self, tenant):
        User.objects.filter(pk=tenant.admin.pk).update(email_verified_at=None)
        response = tenant.client().post("/api/v1/org/invitations/", {"email": "x@acme.test"})
        assert_error_shape(response, 403, "email_unverified")

    def test_garbage_tokens(self, anon):
        for token in ["", "x" * 2000, "a:b:c", 12]:
            assert_error_shape(anon.post(VERIFY, {"token": token}, format="json"), 400)


class TestAddressSquatting:
    def test_an_invitation_wins_the_address_from_an_unverified_account(self, anon, tenant, invite):
        squat = register(anon, "alice@acme.example", org="Squat")
        assert squat.status_code == 201
        squat_refresh = squat.json()["refresh"]
        token = invite(tenant.client(), "alice@acme.example")  # not 400 email_taken
        accepted = anon.post(
            REGISTER, {"email": "alice@acme.example", "password": PASSWORD, "invitation_token": token}, format="json"
        )
        assert accepted.status_code == 201, accepted.content
        assert accepted.json()["user"]["email_verified"] is True
        alice = User.objects.get(email="alice@acme.example")
        assert alice.org == tenant.org
        squatter = User.objects.get(org__name="Squat")
        assert not squatter.is_active and squatter.email.endswith("@unverified.invalid")
        assert_error_shape(anon.post(REFRESH, {"refresh": squat_refresh}, format="json"), 401)

    def test_a_registration_that_proves_the_address_wins(self, anon, sent_mail, mailbox):
        assert register(anon, "bob@bob.example", org="Squat").status_code == 201
        with sent_mail("bob@bob.example") as got:
            pending = register(anon, "bob@bob.example", org="Bob's Shop", password=NEW_PASSWORD)
        assert pending.status_code == 202 and pending.json()["email"] == "bob@bob.example"
        assert "Bob's Shop" in text_of(got.message) and "/register/confirm/" not in text_of(got.message)
        confirmed = anon.post(REGISTER_CONFIRM, {"token": got.token}, format="json")
        assert confirmed.status_code == 201, confirmed.content
        body = confirmed.json()
        assert body["organization"]["name"] == "Bob's Shop" and body["user"]["email_verified"] is True
        assert (
            anon.post(LOGIN, {"email": "bob@bob.example", "password": NEW_PASSWORD}, format="json").status_code == 200
        )
        assert not User.objects.get(org__name="Squat").is_active
        again = anon.post(REGISTER_CONFIRM, {"token": got.token}, format="json")
        assert_error_shape(again, 400, "invalid_token", "token")

    def test_a_verified_address_stays_taken(self, anon, tenant):
        assert_error_shape(register(anon, tenant.member.email), 400, "email_taken", "email")
        response = tenant.client().post("/api/v1/org/invitations/", {"email": tenant.member.email})
        assert_error_shape(response, 400, "email_taken", "email")


class TestMailFormat:
    def test_text_and_html_in_the_orgs_name(self, tenant, sent_mail):
        tenant.org.name = 'Smith & <Sons> "Ltd"'
        tenant.org.save()
        with sent_mail("guest@acme.test") as got:
            tenant.client().post("/api/v1/org/invitations/", {"email": "guest@acme.test"})
        assert got.message.get_content_type() == "multipart/alternative"
        assert 'Smith & <Sons> "Ltd"' in got.message["Subject"]
        assert "Smith & <Sons>" in got.message["From"] and "noreply@localhost" in got.message["From"]
        assert 'to join Smith & <Sons> "Ltd" on Precis' in text_of(got.message)
        html = html_of(got.message)
        assert "Smith &amp; &lt;Sons&gt;" in html and "<Sons>" not in html

    def test_console_and_file_backend(self, settings, tmp_path, capsys):
        settings.EMAIL_BACKEND = "accounts.mail.ConsoleAndFileBackend"
        settings.EMAIL_FILE_PATH = str(tmp_path)
        message = mail.render("verify_email", to="x@y.test", context={"link": "tok", "email": "x@y.test"})
        mail.deliver(message)
        written = "".join(path.read_text() for path in tmp_path.iterdir())
        assert "Subject: Confirm your address for Precis" in written and "tok" in written
        assert "To: x@y.test" in capsys.readouterr().out

    def test_embedded_mode_sends_after_commit_without_a_broker(self, settings, django_capture_on_commit_callbacks):
        settings.EMBEDDED = True
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        django_mail.outbox = []
        from config.tests.process_fixtures import wait_until

        with django_capture_on_commit_callbacks(execute=True):
            mail.send("verify_email", to="x@y.test", context={"link": "tok", "email": "x@y.test"})
            assert django_mail.outbox == []  # nothing before the commit
        wait_until(lambda: django_mail.outbox, timeout=10)
        assert django_mail.outbox[0].to == ["x@y.test"]


@pytest.mark.django_db(transaction=True)
def test_the_worker_retries_until_the_mail_server_answers(fake_llm_server):
    """SMTP down when the task runs: the worker retries; the mail arrives once it is back."""
    port = free_port()
    redis.Redis.from_url(settings.REDIS_URL).delete("mailtest")  # what an earlier run left
    worker = Worker(
        fake_llm_server.url, name="mail", queues="mailtest", extra_env={"EMAIL_URL": f"smtp://127.0.0.1:{port}"}
    )
    worker.start()
    try:
        from accounts.tasks import send_email

        message = mail.render("verify_email", to="retry@y.test", context={"link": "tok", "email": "retry@y.test"})
        send_email.apply_async(args=[message], queue="mailtest")
        from config.tests.process_fixtures import wait_until

        wait_until(lambda: '"state": "RETRY"' in worker.log_path.read_text(errors="replace"), timeout=30)
        from aiosmtpd.controller import Controller

        box = Mailbox()
        controller = Controller(box, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            arrived = box.wait_for(to="retry@y.test", timeout=60)
            assert arrived["Subject"] == "Confirm your address for Precis"
        finally:
            controller.stop()
    finally:
        worker.stop()
