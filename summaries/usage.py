"""Usage metering and monthly budgets.

Every provider call a job makes is recorded (`LLMCall`: org, user, job, provider, model,
tokens, latency, outcome, cost) and added to its day's `UsageDay` row, in one transaction.
Cost comes from LLM_PRICES (per million tokens); the built-in `local` provider is free.

Budgets are monthly, in tokens, cost or both, for the organization and optionally for each
user (`monthly_token_budget`, `monthly_cost_budget`). They count the calls of charged
providers (every one but `local`). Before each call a job *reserves* what the call may use
(its prompt and its answer's limit) on the month's `BudgetCounter` rows, the
organization's and the user's, with one conditional UPDATE each: the row changes only if
the reservation still fits, so two workers cannot both spend the last tokens. When the
call returns, the reservation is settled to what it really used. A reservation that does
not fit raises BudgetExceeded: the job fails with `budget_exceeded` and keeps nothing
(a map-reduce stops at the call that would pass the budget). Requests are checked up front
too (`check_request`, 402). Crossing 80% and 100% of a budget is announced once a month
per budget: a `budget.threshold` event and a mail to the organization's admins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework import status

from config.errors import PrecisError

from .models import BudgetCounter, LLMCall, UsageDay

THRESHOLDS = (100, 80)  # percent, highest first
MILLION = Decimal(1_000_000)


class BudgetExceeded(PrecisError):
    """402: the organization's or the user's monthly budget has no room for this."""

    status_code = status.HTTP_402_PAYMENT_REQUIRED
    default_code = "budget_exceeded"
    default_detail = "The monthly budget is spent."


def charged(provider: str) -> bool:
    """Whether calls to `provider` count against budgets (the built-in summarizer is free)."""
    return provider != "local"


def price(provider: str, model: str, prompt_tokens: int, completion_tokens: int) -> Decimal:
    table = (settings.LLM_PRICES or {}).get(provider) or {}
    # A dated snapshot ("gpt-4o-mini-2024-07-18") costs what its family costs.
    family = max((name for name in table if name != "*" and model.startswith(name)), key=len, default=None)
    prices = table.get(model) or (table[family] if family else None) or table.get("*")
    if not prices or not charged(provider):
        return Decimal(0)
    per_prompt, per_completion = (Decimal(str(value)) for value in prices)
    return ((per_prompt * prompt_tokens + per_completion * completion_tokens) / MILLION).quantize(Decimal("0.000001"))


def month_of(day: date) -> date:
    return day.replace(day=1)


@dataclass(frozen=True)
class Budget:
    """One budget that applies to a call: the organization's (user_key "") or a user's."""

    user_key: str
    tokens: int | None
    cost: Decimal | None


def budgets_for(org_id, user_id) -> list[Budget]:
    """The budgets a call of this organization and user counts against (none set: [])."""
    from accounts.models import User
    from organizations.models import Organization

    found = []
    org = Organization.objects.filter(pk=org_id).values("monthly_token_budget", "monthly_cost_budget").first() or {}
    if org.get("monthly_token_budget") is not None or org.get("monthly_cost_budget") is not None:
        found.append(Budget("", org["monthly_token_budget"], org["monthly_cost_budget"]))
    if user_id:
        user = User.objects.filter(pk=user_id).values("monthly_token_budget", "monthly_cost_budget").first() or {}
        if user.get("monthly_token_budget") is not None or user.get("monthly_cost_budget") is not None:
            found.append(Budget(str(user_id), user["monthly_token_budget"], user["monthly_cost_budget"]))
    return found


def _counter(org_id, month: date, user_key: str):
    """The month's counter row (created on first use; a concurrent creation is fine)."""
    rows = BudgetCounter.unscoped_objects.filter(org_id=org_id, month=month, user_key=user_key)
    if not rows.exists():
        try:
            with transaction.atomic():
                BudgetCounter.unscoped_objects.create(
                    org_id=org_id, month=month, user_key=user_key, user_id=user_key or None
                )
        except IntegrityError:
            pass  # another call created it first
    return rows


def _exceeded(budget: Budget, what: str) -> BudgetExceeded:
    whose = "your" if budget.user_key else "the organization's"
    return BudgetExceeded(
        f"This would pass {whose} monthly {what} budget ({budget.tokens if what == 'token' else budget.cost}).",
        "budget_exceeded",
    )


# -- a job's calls ---------------------------------------------------------------------------
@dataclass
class Meter:
    """The metering of one job's calls (summaries.calls.JobCalls calls it around each call)."""

    org_id: object
    user_id: object
    job_id: object
    provider: str
    month: date = field(default_factory=lambda: month_of(timezone.localdate()))

    def reserve(self, tokens: int, model: str) -> Reservation:
        """Book `tokens` (and their price) on every budget of the call, or raise BudgetExceeded."""
        if not charged(self.provider):
            return Reservation(0, Decimal(0), [])
        cost = price(self.provider, model, tokens, 0)
        budgets = budgets_for(self.org_id, self.user_id)
        try:
            with transaction.atomic():
                for budget in budgets:
                    rows = _counter(self.org_id, self.month, budget.user_key)
                    if budget.tokens is not None:
                        rows = rows.filter(tokens__lte=budget.tokens - tokens)
                    if budget.cost is not None:
                        rows = rows.filter(cost__lte=budget.cost - cost)
                    if rows.update(tokens=F("tokens") + tokens, cost=F("cost") + cost) != 1:
                        raise _exceeded(budget, self._refused_by(budget, tokens))
        finally:
            _release_connection()
        return Reservation(tokens, cost, budgets)

    def _refused_by(self, budget: Budget, tokens: int) -> str:
        """Which of the budget's limits has no room: "token" or "cost" (for the message)."""
        row = BudgetCounter.unscoped_objects.filter(org_id=self.org_id, month=self.month, user_key=budget.user_key)
        spent = row.values_list("tokens", flat=True).first() or 0
        return "token" if budget.tokens is not None and spent + tokens > budget.tokens else "cost"

    def record(
        self,
        reservation: Reservation,
        *,
        model: str,
        stage: str,
        prompt_tokens: int,
        completion_tokens: int,
        latency_ms: int,
        outcome: str = "ok",
        requested_model: str = "",
    ) -> None:
        """The call as it went: its row, its day's totals, its reservation settled, and the
        thresholds it crossed announced (after commit). Priced as the model that answered,
        or as the one asked for when the price table does not know the answer's name."""
        cost = price(self.provider, model, prompt_tokens, completion_tokens) or price(
            self.provider, requested_model, prompt_tokens, completion_tokens
        )
        try:
            with transaction.atomic():
                LLMCall.unscoped_objects.create(
                    org_id=self.org_id,
                    job_id=self.job_id,
                    user_id=self.user_id,
                    provider=self.provider,
                    model=model,
                    stage=stage,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    latency_ms=latency_ms,
                    outcome=outcome,
                    cost=cost,
                )
                _add_to_day(self, model, prompt_tokens, completion_tokens, cost, failed=outcome != "ok")
                if reservation.budgets:
                    tokens = prompt_tokens + completion_tokens - reservation.tokens
                    rows = BudgetCounter.unscoped_objects.filter(
                        org_id=self.org_id, month=self.month, user_key__in=reservation.user_keys
                    )
                    rows.update(tokens=F("tokens") + tokens, cost=F("cost") + (cost - reservation.cost))
                    _announce_thresholds(self.org_id, self.month, reservation.budgets)
        finally:
            _release_connection()


@dataclass(frozen=True)
class Reservation:
    tokens: int
    cost: Decimal
    budgets: list[Budget]  # those booked on, as read when booking (recording reads them no more)

    @property
    def user_keys(self) -> list[str]:
        return [budget.user_key for budget in self.budgets]


def _add_to_day(meter: Meter, model: str, prompt: int, completion: int, cost: Decimal, *, failed: bool) -> None:
    day = timezone.localdate()
    user_key = str(meter.user_id or "")
    key = {"org_id": meter.org_id, "day": day, "user_key": user_key, "provider": meter.provider, "model": model}
    changes = {
        "calls": F("calls") + 1,
        "failed_calls": F("failed_calls") + int(failed),
        "prompt_tokens": F("prompt_tokens") + prompt,
        "completion_tokens": F("completion_tokens") + completion,
        "cost": F("cost") + cost,
    }
    if UsageDay.unscoped_objects.filter(**key).update(**changes):
        return
    try:
        with transaction.atomic():
            UsageDay.unscoped_objects.create(
                **key,
                user_id=meter.user_id,
                calls=1,
                failed_calls=int(failed),
                prompt_tokens=prompt,
                completion_tokens=completion,
                cost=cost,
            )
    except IntegrityError:  # created by a concurrent call since: add to it
        UsageDay.unscoped_objects.filter(**key).update(**changes)


def _release_connection() -> None:
    """Jobs hold no database connection while they wait on the LLM (summaries.services)."""
    if not connection.in_atomic_block:
        connection.close()


# -- thresholds ------------------------------------------------------------------------------
def _announce_thresholds(org_id, month: date, booked: list[Budget]) -> None:
    budgets = {budget.user_key: budget for budget in booked}
    for counter in BudgetCounter.unscoped_objects.filter(org_id=org_id, month=month, user_key__in=list(budgets)):
        budget = budgets.get(counter.user_key)
        if budget is None:
            continue
        for kind, spent, limit in (("tokens", counter.tokens, budget.tokens), ("cost", counter.cost, budget.cost)):
            if limit is None or limit <= 0:
                continue
            percent = next((t for t in THRESHOLDS if spent * 100 >= limit * t), 0)
            column = f"alerted_{kind}"
            if percent and getattr(counter, column) < percent:
                claimed = BudgetCounter.unscoped_objects.filter(pk=counter.pk, **{f"{column}__lt": percent})
                if claimed.update(**{column: percent}):  # once per threshold, however many workers see it
                    _announce(org_id, month, counter.user_key, kind, percent, spent, limit)


def _announce(org_id, month: date, user_key: str, kind: str, percent: int, spent, limit) -> None:
    from accounts import mail
    from accounts.models import Role, User
    from organizations.models import Organization
    from realtime import events

    org = Organization.objects.get(pk=org_id)
    user = User.objects.filter(pk=user_key).first() if user_key else None
    data = {
        "month": month.strftime("%Y-%m"),
        "kind": kind,
        "percent": percent,
        "spent": str(spent),
        "budget": str(limit),
        "scope": "user" if user else "organization",
        "user_id": str(user.pk) if user else None,
    }
    events.publish(org_id, "budget.threshold", data, user_id=user.pk if user else None)
    whose = f"{user.name or user.email}'s" if user else f"{org.name}'s"
    for admin in User.objects.filter(org_id=org_id, role=Role.ADMIN, is_active=True):
        mail.send(
            "budget",
            to=admin.email,
            context={**data, "whose": whose},
            org_name=org.name,
        )


# -- requests --------------------------------------------------------------------------------
def request_estimate(char_count: int, answer_tokens: int) -> int:
    """What summarizing a text of `char_count` characters may take, before it is read."""
    return math.ceil(char_count / 4) + answer_tokens


def check_request(*, org_id, user_id, provider: str, tokens: int) -> None:
    """402 `budget_exceeded` up front when a request's estimate does not fit what is left
    this month (the calls reserve for themselves; this only spares a doomed job)."""
    if not charged(provider):
        return
    month = month_of(timezone.localdate())
    for budget in budgets_for(org_id, user_id):
        spent = BudgetCounter.unscoped_objects.filter(org_id=org_id, month=month, user_key=budget.user_key).first()
        used = spent.tokens if spent else 0
        if budget.tokens is not None and used + tokens > budget.tokens:
            raise _exceeded(budget, "token")
        if budget.cost is not None and spent is not None and spent.cost >= budget.cost:
            raise _exceeded(budget, "cost")


# -- reports ---------------------------------------------------------------------------------
GROUPS = {
    "day": ("day",),
    "user": ("user_id", "user__email"),
    "model": ("provider", "model"),
    "provider": ("provider",),
}
SUMS = ("calls", "failed_calls", "prompt_tokens", "completion_tokens", "cost")


def report(*, org_id, start: date, end: date, group_by: str = "day", user_id=None) -> dict:
    """The organization's usage (one user's with `user_id`) from `start` to `end` (days,
    both included), one row per `group_by` value, with the totals."""
    from django.db.models import Sum

    rows = UsageDay.unscoped_objects.filter(org_id=org_id, day__gte=start, day__lte=end)
    if user_id is not None:
        rows = rows.filter(user_id=user_id)
    keys = GROUPS[group_by]
    grouped = rows.values(*keys).annotate(**{name: Sum(name) for name in SUMS}).order_by(*keys)
    totals = rows.aggregate(**{name: Sum(name) for name in SUMS})

    def shaped(row: dict) -> dict:
        out = {key.replace("user__email", "user_email"): row[key] for key in keys}
        if "day" in out:
            out["day"] = out["day"].isoformat()
        if "user_id" in out:
            out["user_id"] = str(out["user_id"]) if out["user_id"] else None
        return {**out, **_figures(row)}

    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "group_by": group_by,
        "results": [shaped(row) for row in grouped],
        "totals": _figures(totals),
    }


def _figures(sums: dict) -> dict:
    figures = {name: sums[name] or 0 for name in SUMS}
    figures["total_tokens"] = figures["prompt_tokens"] + figures["completion_tokens"]
    figures["cost"] = str(Decimal(figures["cost"]).quantize(Decimal("0.000001")))
    return figures


def month_status(*, org_id, user_id=None) -> list[dict]:
    """This month's budgets of the organization (and the user's) with what is spent."""
    month = month_of(timezone.localdate())
    counters = {row.user_key: row for row in BudgetCounter.unscoped_objects.filter(org_id=org_id, month=month)}
    status_rows = []
    for budget in budgets_for(org_id, user_id):
        counter = counters.get(budget.user_key)
        status_rows.append(
            {
                "month": month.strftime("%Y-%m"),
                "scope": "user" if budget.user_key else "organization",
                "user_id": budget.user_key or None,
                "token_budget": budget.tokens,
                "tokens_spent": counter.tokens if counter else 0,
                "cost_budget": str(budget.cost) if budget.cost is not None else None,
                "cost_spent": str(counter.cost.quantize(Decimal("0.000001"))) if counter else "0.000000",
            }
        )
    return status_rows
