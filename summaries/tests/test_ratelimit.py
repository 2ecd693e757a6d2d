"""The shared LLM limiter (summaries/providers/ratelimit.py): on the real Redis, and on the
embedded mode's in-process store with a clock the test moves."""

import itertools
import math
import subprocess
import sys

import pytest
from django.conf import settings as django_settings

from summaries.providers import ratelimit

MODEL = ("openai", "m")


def reserve(tokens=10, max_wait_s=3600.0, org_id=None):
    return ratelimit.reserve(provider="openai", model="m", org_id=org_id, tokens=tokens, max_wait_s=max_wait_s)


def state():
    (value,), _ = ratelimit._store().read([ratelimit.model_key(*MODEL)])
    return value


def most_in_any_window(starts_ms: list[float], window_ms: float = 60_000.0) -> int:
    starts = sorted(starts_ms)
    best, first = 0, 0
    for last, moment in enumerate(starts):
        while moment - starts[first] >= window_ms:
            first += 1
        best = max(best, last - first + 1)
    return best


@pytest.fixture
def clock(monkeypatch, settings):
    """The embedded store, on a clock that only the test moves."""
    settings.EMBEDDED = True
    ratelimit.reset_for_tests()
    now = {"s": 1_800_000_000.0}
    monkeypatch.setattr(ratelimit.time, "time", lambda: now["s"])
    yield now
    ratelimit.reset_for_tests()


@pytest.mark.parametrize("store", ["redis", "memory"])
def test_requests_never_exceed_the_limit_in_any_60s_window(store, settings, request):
    if store == "memory":
        request.getfixturevalue("clock")
    settings.LLM_RATE_LIMIT_RPM = 600
    turns = [reserve() for _ in range(1500)]
    starts = [turn.start_ms for turn in turns]
    assert most_in_any_window(starts) <= 600
    # ...and uses it: a burst of one second's worth at once, then evenly spaced
    assert [turn.wait_s == 0 for turn in turns[:11]] == [True] * 10 + [False]
    first = starts[0]
    gaps = {round(b - a, 3) for a, b in itertools.pairwise(starts[10:])}
    assert gaps == {round(60_000 / 590, 3)}
    assert len([s for s in starts if s - first < 60_000]) >= 0.95 * 600


def test_a_turn_too_far_away_books_nothing(clock, settings):
    settings.LLM_RATE_LIMIT_RPM = 60  # burst 1, then every 60/59 s
    assert reserve(max_wait_s=0).wait_s == 0
    with pytest.raises(ratelimit.RateLimitWait) as wait:
        reserve(max_wait_s=0.5)
    assert wait.value.wait_s == pytest.approx(60 / 59, rel=1e-3)
    assert reserve().wait_s == pytest.approx(60 / 59, rel=1e-3)  # the refused one took no place


def test_tokens_per_minute_and_settling_to_real_usage(clock, settings):
    settings.LLM_RATE_LIMIT_TPM = 6000  # burst 100 tokens, then 5900 a minute
    first = reserve(tokens=100)
    assert first.wait_s == 0
    second = reserve(tokens=590)
    assert second.wait_s == pytest.approx(6.0, rel=1e-3)  # 590 tokens' worth of refill after the burst
    # the first call used only 10 of its 100 tokens: the 90 come back to the bucket
    ratelimit.settle(first, status=200, headers={}, used_tokens=10)
    assert reserve(tokens=1).wait_s == pytest.approx(6.0 - 90 * 60 / 5900 + 60 / 5900, rel=1e-3)


def test_server_headers_set_the_pace_without_configuration(clock, settings):
    assert reserve().wait_s == 0 and ratelimit.request_limit(state()) is None  # nothing known: no pacing
    turn = reserve()
    ratelimit.settle(turn, status=200, headers={"x-ratelimit-limit-requests": "60"}, used_tokens=None)
    assert state()["lr"] == 60
    reserve()
    assert reserve().wait_s == pytest.approx(60 / 59, rel=1e-3)


def test_nothing_remaining_pauses_until_the_reset(clock):
    turn = reserve()
    ratelimit.settle(
        turn,
        status=200,
        headers={"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m30s"},
        used_tokens=None,
    )
    assert reserve().wait_s == pytest.approx(90)


def test_the_servers_remaining_count_caps_the_bucket(clock, settings):
    settings.LLM_RATE_LIMIT_RPM = 600  # a bucket of 10
    turn = reserve()
    ratelimit.settle(turn, status=200, headers={"x-ratelimit-remaining-requests": "2"}, used_tokens=None)
    waits = [reserve().wait_s for _ in range(3)]
    assert waits[:2] == [0, 0] and waits[2] == pytest.approx(60 / 590, rel=1e-3)


def test_429_pauses_everyone_lowers_the_rate_then_recovers(clock, settings):
    for _ in range(100):  # 100 calls in 10 s: 600 a minute observed
        reserve()
        clock["s"] += 0.1
    turn = reserve()
    ratelimit.settle(turn, status=429, headers={"retry-after": "5"}, used_tokens=None)
    adapted = state()["ar"]
    assert adapted == math.floor(0.7 * 606)  # 70% of what was being sent
    # more 429s of the same burst lower it once, but extend the pause
    ratelimit.settle(turn, status=429, headers={}, used_tokens=None)
    assert state()["ar"] == adapted
    first_after = reserve()
    assert first_after.wait_s == pytest.approx(5.0, abs=0.01)  # the server's Retry-After
    clock["s"] += 30  # three quiet periods of 10 s
    reserve()
    assert state()["ar"] == pytest.approx(adapted * 1.1**3)


def test_429s_in_a_row_back_off_without_retry_after(clock):
    turn = reserve()
    waits = []
    for _ in range(4):
        ratelimit.settle(turn, status=429, headers={}, used_tokens=None)
        waits.append(state()["cool"] / 1000 - clock["s"])
        clock["s"] += waits[-1]
    assert waits == pytest.approx([1, 2, 4, 8])
    ratelimit.settle(turn, status=200, headers={}, used_tokens=None)
    assert "strikes" not in state()


def test_an_organizations_own_rate(clock, settings):
    settings.LLM_ORG_RATE_LIMIT_RPM = 60
    assert reserve(org_id="a").wait_s == 0
    assert reserve(org_id="a").wait_s == pytest.approx(60 / 59, rel=1e-3)
    assert reserve(org_id="b").wait_s == 0  # another organization is not held up
    assert ratelimit.orgs_over_rate(["a", "b"], horizon_s=0.5) == {"a"}


def test_an_unknown_server_gets_one_call_first(clock):
    """Nothing configured, nothing heard: one job, whose answer's headers (if any) set the pace."""
    assert ratelimit.room([MODEL], horizon_s=1) == {MODEL: 1}
    turn = reserve()
    assert ratelimit.room([MODEL], horizon_s=1) == {MODEL: 0}  # its answer is awaited
    ratelimit.settle(turn, status=200, headers={}, used_tokens=None)
    assert ratelimit.room([MODEL], horizon_s=1) == {MODEL: None}  # no limit announced: no pacing
    clock["s"] += 3600  # ...and a lost answer does not block for ever
    other = ("openai", "other")
    ratelimit.reserve(provider="openai", model="other", org_id=None, tokens=1, max_wait_s=1)
    clock["s"] += 61
    assert ratelimit.room([other], horizon_s=1) == {other: 1}


def test_room_is_what_can_start_within_the_horizon(clock, settings):
    settings.LLM_RATE_LIMIT_RPM = 600  # a bucket of 10, then one every 60/590 s
    assert ratelimit.room([MODEL], horizon_s=1) == {MODEL: 10 + 9}
    for _ in range(15):
        reserve()
    assert ratelimit.room([MODEL], horizon_s=1) == {MODEL: 4}
    turn = reserve()
    ratelimit.settle(turn, status=429, headers={"retry-after": "3"}, used_tokens=None)
    assert ratelimit.room([MODEL], horizon_s=1) == {MODEL: 0}


def test_scheduler_gate_admits_up_to_the_room(clock, settings):
    from types import SimpleNamespace

    settings.LLM_RATE_LIMIT_RPM = 120  # a bucket of 2, then one every 60/118 s
    settings.LLM_MODEL = "m"
    jobs = [SimpleNamespace(org_id=f"org-{i % 2}", payload={"provider": "openai", "model": None}) for i in range(6)]
    other = SimpleNamespace(org_id="org-0", payload={"provider": "openai", "model": "other-model"})
    admit = ratelimit.scheduler_gate([*jobs, other])
    assert [admit(job) for job in jobs] == [True, True, True, False, False, False]
    assert admit(other)  # another model has a bucket of its own


def test_scheduler_gate_holds_back_an_organization_over_its_own_rate(clock, settings):
    from types import SimpleNamespace

    settings.LLM_ORG_RATE_LIMIT_RPM = 60
    settings.LLM_RATE_LIMIT_RPM = 60_000  # the provider has room for everyone
    settings.LLM_MODEL = "m"
    for _ in range(3):  # org-0 booked its next three seconds
        reserve(org_id="org-0")
    jobs = [SimpleNamespace(org_id=f"org-{i}", payload={"provider": "openai", "model": None}) for i in range(2)]
    admit = ratelimit.scheduler_gate(jobs)
    assert [admit(job) for job in jobs] == [False, True]


@pytest.mark.parametrize(
    "text, seconds",
    [("1s", 1), ("6m0s", 360), ("20ms", 0.02), ("0.5", 0.5), ("1h2m3s", 3723), ("59.121s", 59.121), ("x", None)],
)
def test_reset_durations(text, seconds):
    parsed = ratelimit.parse_duration(text)
    assert parsed == (pytest.approx(seconds) if seconds is not None else None)


def test_two_processes_share_one_limit(settings):
    """Two processes booking at once on the real Redis: one limit, no window over it."""
    settings.LLM_RATE_LIMIT_RPM = 600
    script = (
        "import django, json; django.setup();"
        "from summaries.providers import ratelimit;"
        "print(json.dumps([ratelimit.reserve(provider='openai', model='m', org_id=None, tokens=1,"
        " max_wait_s=3600).start_ms for _ in range(400)]))"
    )
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "LLM_RATE_LIMIT_RPM": "600",
        "REDIS_URL": django_settings.REDIS_URL,
        "PATH": "/usr/bin:/bin",
    }
    processes = [
        subprocess.Popen([sys.executable, "-c", script], env=env, cwd=django_settings.BASE_DIR, stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    import json

    starts = []
    for process in processes:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        starts += json.loads(out)
    assert len(starts) == 800 and len(set(starts)) >= 790  # distinct turns, not one bucket per process
    assert most_in_any_window(starts) <= 600
