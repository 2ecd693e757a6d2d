"""Usage metering and budgets (issue 18): every call recorded and priced, monthly budgets
exact under concurrency, 402 up front, thresholds announced, the usage API and report."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from accounts.models import Role
from conftest import assert_error_shape, make_user
from realtime.models import StoredEvent
from summaries import usage
from summaries.models import BudgetCounter, LLMCall, UsageDay

USAGE = "/api/v1/org/usage/"
ORG = "/api/v1/org/"


def meter(tenant, user=None, provider="openai"):
    return usage.Meter(org_id=tenant.org.pk, user_id=(user or tenant.admin).pk, job_id=None, provider=provider)


def spend(tenant, tokens=(100, 20), user=None, provider="openai", model="gpt-4o-mini", outcome="ok"):
    """One call as a job makes it: reserved, then recorded."""
    m = meter(tenant, user, provider)
    reservation = m.reserve(tokens[0] + tokens[1], model)
    m.record(
        reservation,
        model=model,
        stage="single",
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        latency_ms=1200,
        outcome=outcome,
    )


@pytest.mark.django_db
class TestMetering:
    def test_a_call_is_recorded_priced_and_added_to_its_day(self, tenant):
        spend(tenant, (1000, 500))
        spend(tenant, (2000, 0), outcome="llm_timeout")
        spend(tenant, (300, 100), provider="local", model="precis-extractive-1")
        openai = LLMCall.unscoped_objects.filter(provider="openai").order_by("created_at")
        assert [(c.prompt_tokens, c.completion_tokens, c.outcome) for c in openai] == [
            (1000, 500, "ok"),
            (2000, 0, "llm_timeout"),
        ]
        # gpt-4o-mini: 0.15 and 0.60 per million tokens (the default LLM_PRICES)
        assert openai[0].cost == Decimal("0.000450") and openai[0].user_id == tenant.admin.pk
        day = UsageDay.unscoped_objects.get(provider="openai")
        assert (day.calls, day.failed_calls, day.prompt_tokens, day.completion_tokens) == (2, 1, 3000, 500)
        assert day.cost == Decimal("0.000750") and day.day == timezone.localdate()
        assert UsageDay.unscoped_objects.get(provider="local").cost == 0  # the built-in summarizer is free

    @pytest.mark.parametrize(
        "model, expected",
        [("gpt-4o-mini-2024-07-18", "0.000750"), ("gpt-4o", "0.012500"), ("unknown-model", "0")],
    )
    def test_prices_come_from_the_table_by_model_family(self, settings, model, expected):
        assert usage.price("openai", model, 1000, 1000) == Decimal(expected)
        settings.LLM_PRICES = {"openai": {"*": [1, 1]}}
        assert usage.price("openai", "anything", 500_000, 500_000) == Decimal("1.000000")
        assert usage.price("local", "anything", 500_000, 500_000) == 0


@pytest.mark.django_db
class TestBudgets:
    def set_budget(self, tenant, **budget):
        type(tenant.org).objects.filter(pk=tenant.org.pk).update(**budget)

    def test_a_call_that_would_pass_the_budget_is_refused_and_nothing_is_booked(self, tenant):
        self.set_budget(tenant, monthly_token_budget=1000)
        spend(tenant, (600, 100))
        with pytest.raises(usage.BudgetExceeded) as refused:
            meter(tenant).reserve(400, "gpt-4o-mini")
        assert refused.value.get_codes() == "budget_exceeded" and refused.value.status_code == 402
        assert "the organization's monthly token budget (1000)" in str(refused.value.detail)
        assert BudgetCounter.unscoped_objects.get(user_key="").tokens == 700  # the refusal booked nothing
        meter(tenant).reserve(300, "gpt-4o-mini")  # what is left still fits

    def test_a_user_budget_limits_that_user_only(self, tenant):
        tenant.member.monthly_token_budget = 500
        tenant.member.save(update_fields=["monthly_token_budget"])
        spend(tenant, (400, 50), user=tenant.member)
        with pytest.raises(usage.BudgetExceeded, match="your monthly token budget"):
            meter(tenant, tenant.member).reserve(100, "gpt-4o-mini")
        meter(tenant, tenant.admin).reserve(10_000, "gpt-4o-mini")  # the admin has no budget of their own

    def test_a_cost_budget(self, tenant, settings):
        settings.LLM_PRICES = {"openai": {"*": [1000, 1000]}}  # 0.001 a token
        self.set_budget(tenant, monthly_cost_budget=Decimal("1.00"))
        spend(tenant, (700, 200))  # 0.90
        with pytest.raises(usage.BudgetExceeded, match="monthly cost budget"):
            meter(tenant).reserve(200, "gpt-4o-mini")

    def test_the_local_provider_is_never_refused(self, tenant):
        self.set_budget(tenant, monthly_token_budget=1)
        spend(tenant, (5000, 500), provider="local", model="precis-extractive-1")
        assert not BudgetCounter.unscoped_objects.exists()

    def test_crossing_80_and_100_percent_is_announced_once_each(self, tenant, django_capture_on_commit_callbacks):
        self.set_budget(tenant, monthly_token_budget=1000)
        with django_capture_on_commit_callbacks(execute=True):
            spend(tenant, (700, 0))
            spend(tenant, (100, 0))  # 80%
            spend(tenant, (50, 0))  # still 85%: nothing new
            spend(tenant, (150, 0))  # 100%
        alerts = StoredEvent.unscoped_objects.filter(org=tenant.org, type="budget.threshold").order_by("seq")
        assert [(e.data["percent"], e.data["kind"], e.data["scope"]) for e in alerts] == [
            (80, "tokens", "organization"),
            (100, "tokens", "organization"),
        ]
        assert alerts[0].data["spent"] == "800" and alerts[0].data["budget"] == "1000"
        assert alerts[0].user_id is None  # the organization's: for its admins


@pytest.mark.django_db(transaction=True)
def test_two_workers_cannot_both_spend_the_last_tokens(tenant):
    """Eight threads, each with its own database connection, reserve 300 tokens at the same
    moment against 1000 left: exactly three get them, every round."""
    type(tenant.org).objects.filter(pk=tenant.org.pk).update(monthly_token_budget=1000)
    for round_number in range(5):
        BudgetCounter.unscoped_objects.all().delete()
        start = threading.Barrier(8)
        outcomes = []

        def race():
            try:
                start.wait()
                meter(tenant).reserve(300, "gpt-4o-mini")
                outcomes.append("booked")
            except usage.BudgetExceeded:
                outcomes.append("refused")
            finally:
                connection.close()

        threads = [threading.Thread(target=race) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(outcomes) == ["booked"] * 3 + ["refused"] * 5, (round_number, outcomes)
        assert BudgetCounter.unscoped_objects.get(user_key="").tokens == 900


@pytest.mark.django_db
class TestRequests:
    DOCS = "/api/v1/documents/"

    def test_a_summarize_request_that_cannot_fit_is_402_and_starts_nothing(self, tenant, settings):
        from jobs.models import Job

        settings.LLM_API_KEY = "test-key"
        type(tenant.org).objects.filter(pk=tenant.org.pk).update(monthly_token_budget=1000)
        BudgetCounter.unscoped_objects.create(org=tenant.org, month=usage.month_of(timezone.localdate()), tokens=990)
        client = tenant.client()
        document = client.post(self.DOCS, {"title": "T", "content": "Some words. " * 100}, format="json").json()
        response = client.post(f"{self.DOCS}{document['id']}/summarize/", {"provider": "openai"}, format="json")
        assert_error_shape(response, 402, "budget_exceeded")
        batch = client.post(f"{self.DOCS}summarize/", {"document_ids": [document["id"]], "provider": "openai"})
        assert_error_shape(batch, 402, "budget_exceeded")
        assert not Job.unscoped_objects.exists()
        local = client.post(f"{self.DOCS}{document['id']}/summarize/", {"provider": "local"}, format="json")
        assert local.status_code == 202  # the built-in summarizer costs nothing


@pytest.mark.django_db
class TestUsageAPI:
    def test_admins_see_the_organization_and_members_their_own(self, tenant, other_tenant):
        spend(tenant, (100, 10))
        spend(tenant, (200, 20), user=tenant.member)
        spend(other_tenant, (9999, 1))
        admin = tenant.client().get(USAGE).json()
        assert admin["totals"]["total_tokens"] == 330 and admin["totals"]["calls"] == 2
        assert admin["group_by"] == "day" and admin["results"][0]["day"] == timezone.localdate().isoformat()
        member = tenant.client(tenant.member).get(USAGE).json()
        assert member["totals"]["total_tokens"] == 220
        sneaky = tenant.client(tenant.member).get(USAGE, {"user": str(tenant.admin.pk)}).json()
        assert sneaky["totals"]["total_tokens"] == 220  # a member's `user` is ignored: their own
        one = tenant.client().get(USAGE, {"user": str(tenant.member.pk)}).json()
        assert one["totals"]["total_tokens"] == 220
        theirs = tenant.client().get(USAGE, {"user": str(other_tenant.admin.pk)}).json()
        assert theirs["totals"]["total_tokens"] == 0 and theirs["results"] == []

    @pytest.mark.parametrize(
        "group_by, key",
        [("user", "user_email"), ("model", "model"), ("provider", "provider"), ("day", "day")],
    )
    def test_group_by(self, tenant, group_by, key):
        spend(tenant, (100, 10))
        spend(tenant, (200, 20), user=tenant.member, model="gpt-4o")
        rows = tenant.client().get(USAGE, {"group_by": group_by}).json()["results"]
        expected = {
            "user": {tenant.admin.email, tenant.member.email},
            "model": {"gpt-4o-mini", "gpt-4o"},
            "provider": {"openai"},
            "day": {timezone.localdate().isoformat()},
        }[group_by]
        assert {row[key] for row in rows} == expected
        assert sum(row["total_tokens"] for row in rows) == 330

    def test_a_date_range(self, tenant):
        spend(tenant, (100, 10))
        UsageDay.unscoped_objects.filter(org=tenant.org).update(day=date(2026, 1, 15))
        window = tenant.client().get(USAGE, {"from": "2026-01-01", "to": "2026-01-31"}).json()
        assert window["totals"]["total_tokens"] == 110 and window["from"] == "2026-01-01"
        assert tenant.client().get(USAGE).json()["totals"]["total_tokens"] == 0  # this month: nothing

    @pytest.mark.parametrize(
        "params, attr",
        [
            ({"from": "2026-02-01", "to": "2026-01-01"}, "from"),
            ({"from": "2020-01-01", "to": "2026-01-01"}, "from"),
            ({"from": "yesterday"}, "from"),
            ({"to": "2026-13-45"}, "to"),
            ({"group_by": "week"}, "group_by"),
            ({"group_by": "day\x00"}, "group_by"),
            ({"user": "not-a-uuid"}, "user"),
        ],
    )
    def test_bad_input(self, tenant, params, attr):
        assert_error_shape(tenant.client().get(USAGE, params), 400, attr=attr)

    def test_anonymous_is_401(self, anon):
        assert_error_shape(anon.get(USAGE), 401)

    def test_the_month_s_budgets_are_shown(self, tenant):
        type(tenant.org).objects.filter(pk=tenant.org.pk).update(monthly_token_budget=5000)
        spend(tenant, (100, 10))
        (budget,) = tenant.client().get(USAGE).json()["budgets"]
        assert budget["scope"] == "organization" and budget["token_budget"] == 5000 and budget["tokens_spent"] == 110


@pytest.mark.django_db
class TestSettingBudgets:
    def test_admins_set_and_remove_the_organization_s_budgets(self, tenant):
        client = tenant.client()
        body = client.patch(ORG, {"monthly_token_budget": 2_000_000, "monthly_cost_budget": "49.90"}).json()
        assert body["monthly_token_budget"] == 2_000_000 and body["monthly_cost_budget"] == "49.90"
        assert client.patch(ORG, {"monthly_cost_budget": None}).json()["monthly_cost_budget"] is None
        tenant.org.refresh_from_db()
        assert tenant.org.monthly_token_budget == 2_000_000 and tenant.org.name == "Acme"

    def test_members_cannot(self, tenant):
        assert_error_shape(tenant.client(tenant.member).patch(ORG, {"monthly_token_budget": 1}), 403)

    @pytest.mark.parametrize(
        "body, attr",
        [
            ({"monthly_token_budget": -1}, "monthly_token_budget"),
            ({"monthly_token_budget": "lots"}, "monthly_token_budget"),
            ({"monthly_token_budget": 10**20}, "monthly_token_budget"),
            ({"monthly_cost_budget": "1.234"}, "monthly_cost_budget"),
            ({"monthly_cost_budget": "-5"}, "monthly_cost_budget"),
            ({"monthly_cost_budget": "1e400"}, "monthly_cost_budget"),
            ({"monthly_budget": 5}, None),
        ],
    )
    def test_bad_budgets(self, tenant, body, attr):
        response = tenant.client().patch(ORG, body, format="json")
        if attr is None:
            assert_error_shape(response, 400)
        else:
            assert_error_shape(response, 400, attr=attr)
        tenant.org.refresh_from_db()
        assert tenant.org.monthly_token_budget is None and tenant.org.monthly_cost_budget is None

    def test_a_member_s_budget(self, tenant, other_tenant):
        client = tenant.client()
        url = f"{ORG}users/{tenant.member.pk}/"
        assert client.patch(url, {"monthly_token_budget": 1000}).json()["monthly_token_budget"] == 1000
        tenant.member.refresh_from_db()
        assert tenant.member.monthly_token_budget == 1000 and tenant.member.role == Role.MEMBER
        foreign = client.patch(f"{ORG}users/{other_tenant.member.pk}/", {"monthly_token_budget": 1})
        assert_error_shape(foreign, 404)


@pytest.mark.django_db
def test_usage_report_prints_a_table_and_csv(tenant, capsys):
    spend(tenant, (1000, 500))
    spend(tenant, (200, 20), user=make_user(tenant.org, email="second@acme.test"), model="gpt-4o")
    month = timezone.localdate().strftime("%Y-%m")
    call_command("usage_report", "--org", tenant.org.slug, "--month", month, "--group-by", "model")
    table = capsys.readouterr().out
    assert f"Acme: LLM usage {month}" in table and "gpt-4o-mini" in table and "total" in table
    call_command("usage_report", "--org", tenant.org.slug, "--csv", "--group-by", "user")
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "user_id,user_email,calls,failed_calls,prompt_tokens,completion_tokens,total_tokens,cost"
    assert lines[-1].startswith("total,,2,0,1200,520,1720,")
    last_month = (timezone.localdate().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    call_command("usage_report", "--org", tenant.org.slug, "--month", last_month, "--csv")
    assert capsys.readouterr().out.strip().splitlines()[-1] == "total,0,0,0,0,0,0.000000"
    with pytest.raises(Exception, match="--month must be YYYY-MM"):
        call_command("usage_report", "--org", tenant.org.slug, "--month", "May")
    with pytest.raises(Exception, match="No organization"):
        call_command("usage_report", "--org", "nope")


@pytest.mark.django_db(transaction=True)
class TestThroughTheWorker:
    """A real worker, the loopback LLM: each call is metered; a map-reduce stops at the budget."""

    def test_every_call_of_a_map_reduce_is_recorded_with_its_job(self, celery_worker, fake_llm, tenant):
        from summaries.models import Summary
        from summaries.tests.test_pipeline import long_text, make_document, summarize, wait_for_status

        client = tenant.client()
        document = make_document(client, content=long_text())
        job = summarize(client, document["id"], provider="openai").json()
        done = wait_for_status(job["id"], "succeeded", "failed")
        assert done.status == "succeeded", done.error
        summary = Summary.unscoped_objects.get(pk=done.summary_id)
        calls = LLMCall.unscoped_objects.filter(job_id=done.pk)
        assert calls.count() == len(fake_llm.requests) == summary.chunk_count + 1
        assert {c.stage for c in calls} == {"map", "reduce"} and {c.user_id for c in calls} == {tenant.admin.pk}
        assert (
            sum(c.prompt_tokens + c.completion_tokens for c in calls)
            == summary.prompt_tokens + summary.completion_tokens
        )
        usage_now = client.get(USAGE).json()["totals"]
        assert usage_now["calls"] == calls.count() and Decimal(usage_now["cost"]) > 0

    def test_a_map_reduce_stops_at_the_budget_and_keeps_nothing(self, celery_worker, fake_llm, tenant):
        from summaries.models import Summary
        from summaries.tests.test_pipeline import long_text, make_document, summarize, wait_for_status

        client = tenant.client()
        document = make_document(client, content=long_text(paragraphs=30))
        type(tenant.org).objects.filter(pk=tenant.org.pk).update(monthly_token_budget=1_000_000)
        fake_llm.latency = 0.3
        job = summarize(client, document["id"], provider="openai").json()
        assert fake_llm.wait_for_requests(1)
        # Mid-way other work spends nearly all that is left (as another worker would, through
        # the same counter): the next call's booking no longer fits.
        from django.db.models import F

        others = 1_000_000 - 40 - BudgetCounter.unscoped_objects.get(user_key="").tokens
        BudgetCounter.unscoped_objects.filter(user_key="").update(tokens=F("tokens") + others)
        done = wait_for_status(job["id"], "failed", "succeeded", timeout=60)
        assert done.status == "failed" and done.error["code"] == "budget_exceeded", done.error
        assert "monthly token budget (1000000)" in done.error["detail"]
        assert not Summary.unscoped_objects.exists()
        counter = BudgetCounter.unscoped_objects.get(user_key="")
        spent = sum(c.prompt_tokens + c.completion_tokens for c in LLMCall.unscoped_objects.all())
        assert counter.tokens - others == spent  # settled to what was used; reservations released
        assert 0 < len(fake_llm.requests) == LLMCall.unscoped_objects.count()


@pytest.mark.django_db(transaction=True)
def test_the_admins_are_mailed_when_a_budget_crosses_80_percent(tenant, celery_worker, mailbox):
    from config.tests.mailbox import text_of
    from config.tests.process_fixtures import wait_until

    type(tenant.org).objects.filter(pk=tenant.org.pk).update(monthly_token_budget=1000)
    second_admin = make_user(tenant.org, Role.ADMIN, email="second-admin@acme.test")
    spend(tenant, (800, 50), user=tenant.member)  # committed: the mails go out through the worker

    def alert(address):  # (an earlier test's worker may still be mailing its own alerts)
        return wait_until(lambda: next((m for m in mailbox.to(address) if "850 of 1000" in text_of(m)), None))

    first = alert(tenant.admin.email)
    assert "Acme's token budget is 80% spent" in first["Subject"]
    assert alert(second_admin.email)["Subject"] == first["Subject"]
    assert not any("850 of 1000" in text_of(m) for m in mailbox.to(tenant.member.email))  # members are not
