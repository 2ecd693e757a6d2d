"""Authentication cost: API keys vs JWT, per request, on two paths served by Precis (daphne +
Django + DRF): the list `GET /api/v1/documents/?page_size=50` and the summarize
`POST /api/v1/documents/{id}/summarize/` (body `{"provider": "local"}`). The same user of the
same organization sends the same requests with `Authorization: Bearer <jwt>` (the baseline)
and with `Authorization: Bearer pk_…` (an API key it created), to the same server process,
in alternating rounds; figures are the key's ratios against the JWT's, medians of rounds.

    .venv/bin/python -m bench.auth_cost --scale small|full

The data, the server and the GET load come from bench/rest_list.py and bench/_rest_load.py.
The summarize path: each POST creates a queued job and runs a scheduling round. No Celery
worker runs; a stand-in registers worker capacity for the `summaries` queue in the broker's
Redis (db 9, jobs.capacity), so each round really hands the new job to the broker, as it does
in production, and the jobs pile up there. Between runs the jobs, their stored events and the
broker queue are deleted, so every run starts from the same state.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time

from bench import _rest_load as load
from bench.common import bench_env, figure, median, parse_scale, percentile, print_result, save_result, setup_django
from bench.rest_list import ORGS, PRECIS_APP, _each, _med, _rotations, _server, bench_user, seed

NAME = "auth_cost"
DB = "precis_bench_auth"
REDIS_DB = 9
PAGE_SIZE = 50
LIST_PATH = f"/api/v1/documents/?page_size={PAGE_SIZE}"
SUMMARIZE_BODY = '{"provider": "local"}'
SUMMARIZE_DOCUMENTS = 32  # the POSTs cycle over this many documents of the org (no one row lock for all)
EXTRA_ENV = {"JWT_ACCESS_MINUTES": "600", "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver"}

SCALES = {
    # documents (over 10 orgs), wrk rounds × seconds per credential and path, fixed-rate rounds ×
    # seconds, in-process authentication calls per probe. Many short rounds: the machine is shared.
    "small": {"documents": 20_000, "rounds": 4, "seconds": 4, "rate_rounds": 4, "rate_seconds": 3, "auth_calls": 1500},
    "full": {
        "documents": 100_000,
        "rounds": 12,
        "seconds": 8,
        "rate_rounds": 10,
        "rate_seconds": 5,
        "auth_calls": 6000,
    },
}
CONNECTIONS = 8  # wrk closed loop, as rest_list
MAX_RATE = 50  # requests/s, cap of the fixed rate for the latency figure
ARMS = ("jwt", "api_key")
TARGET = 0.90  # the issue: API-key authentication costs at most 10 % per request

FAKE_WORKER = "bench-auth-cost-stand-in"
FAKE_SLOTS = 1_000_000  # never the limit: every round hands its new job over
SUMMARIZE_QUEUE = "summaries"  # the `local` provider's jobs (jobs.scheduler.queue_for)


# --- fixtures ------------------------------------------------------------------------


def credentials() -> tuple[object, str, str]:
    """The benchmark user, its JWT access token and a new read/write API key of its own role."""
    from accounts.tokens import token_pair_for
    from organizations.api_keys import api_key_create
    from organizations.models import ApiKey
    from organizations.tenancy import org_scope

    user = bench_user()
    ApiKey.unscoped_objects.filter(org=user.org, name="bench auth_cost").delete()  # earlier runs' keys
    with org_scope(user.org.pk):
        _row, key = api_key_create(
            org=user.org, user=user, name="bench auth_cost", role=user.role, scopes=["read", "write"]
        )
    return user, token_pair_for(user)["access"], key


def system_templates() -> bool:
    """Put the system templates back (templates_app migrations 0003 and 0004) when they are gone:
    rest_list's seed truncates organizations_organization CASCADE, which empties the templates
    table too, and summarize needs the default template. True when they had to be restored."""
    import importlib

    from django.apps import apps

    from templates_app.models import Template

    if Template._base_manager.filter(org__isnull=True).count() >= 4:
        return False
    importlib.import_module("templates_app.migrations.0003_system_templates_language").create(apps, None)
    importlib.import_module("templates_app.migrations.0004_template_format").set_intent(apps, None)
    return True


def summarize_paths(user) -> list[str]:
    from documents.models import Document

    ids = (
        Document.unscoped_objects.filter(org=user.org)
        .order_by("-created_at")
        .values_list("id", flat=True)[:SUMMARIZE_DOCUMENTS]
    )
    return [f"/api/v1/documents/{pk}/summarize/" for pk in ids]


class Capacity:
    """Registers a stand-in worker's slots for the summaries queue every REFRESH_S (what a live
    worker does), so the scheduling rounds hand jobs to the broker with no worker running."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def register(self) -> None:
        from jobs import capacity

        capacity.register(FAKE_WORKER, {SUMMARIZE_QUEUE: FAKE_SLOTS})

    def _run(self) -> None:
        from jobs import capacity

        while not self._stop.wait(capacity.REFRESH_S):
            self.register()

    def __enter__(self) -> Capacity:
        self.register()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        from jobs import capacity

        self._stop.set()
        self._thread.join(timeout=5)
        capacity.unregister(FAKE_WORKER, [SUMMARIZE_QUEUE])


def reset_jobs() -> dict[str, int]:
    """Delete the summarize runs' jobs, their stored events and the broker's queue of them."""
    from django.db import connection

    from jobs import capacity

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM realtime_storedevent")
        events = cursor.rowcount
        cursor.execute("DELETE FROM jobs_job")
        jobs = cursor.rowcount
    client = capacity.broker_redis()
    queued = 0
    for key in client.scan_iter(match=f"{SUMMARIZE_QUEUE}*"):  # the queue (and its priority lists)
        if client.type(key) == b"list":
            queued += client.llen(key)
            client.delete(key)
    connection.close()
    return {"jobs": jobs, "events": events, "queued": queued}


def broker_queue_length() -> int:
    from jobs import capacity

    client = capacity.broker_redis()
    return sum(client.llen(k) for k in client.scan_iter(match=f"{SUMMARIZE_QUEUE}*") if client.type(k) == b"list")


# --- what one request runs -------------------------------------------------------------

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "RELEASE", "SAVEPOINT")


def statements(token: str, paths: list[str]) -> dict[str, list[str]]:
    """The SQL of one list and one summarize request (after a warm one), through django.test.Client."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    out = {}
    for path_name, call in (
        ("list", lambda: client.get(LIST_PATH, HTTP_AUTHORIZATION=f"Bearer {token}")),
        (
            "summarize",
            lambda: client.post(
                paths[0], SUMMARIZE_BODY, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
            ),
        ),
    ):
        call()  # warm
        with CaptureQueriesContext(connection) as ctx:
            response = call()
        assert response.status_code in (200, 202), response.content[:300]
        out[path_name] = [
            q["sql"] for q in ctx.captured_queries if not q["sql"].upper().startswith(TRANSACTION_CONTROL)
        ]
    connection.close()
    return out


def auth_only(jwt: str, key: str, calls: int) -> dict[str, float]:
    """µs per call, in this process (autocommit), of DRF's authentication chain alone
    (ApiKeyAuthentication, then TenantJWTAuthentication) with each credential, and of the app's
    functions it calls: the JWT's signature and claims check and its get_user (the user +
    organization query and checks); the key's SHA-256 and authenticate_key (the SHA-256, the
    key + creator + organization query and checks). Rotating blocks of 100; median of blocks."""
    from django.db import connection
    from django.test import RequestFactory
    from rest_framework.request import Request

    from accounts.authentication import TenantJWTAuthentication
    from organizations.api_keys import ApiKeyAuthentication, authenticate_key, key_hash

    jwt_auth = TenantJWTAuthentication()
    chain = [ApiKeyAuthentication(), jwt_auth]
    factory = RequestFactory()
    requests = {
        arm: Request(factory.get(LIST_PATH, HTTP_AUTHORIZATION=f"Bearer {token}"))
        for arm, token in (("jwt", jwt), ("api_key", key))
    }

    def authenticate(request):
        for authenticator in chain:
            result = authenticator.authenticate(request)
            if result is not None:
                return result
        raise AssertionError("not authenticated")

    validated = jwt_auth.get_validated_token(jwt.encode())
    probes = {
        "jwt": lambda: authenticate(requests["jwt"]),
        "api_key": lambda: authenticate(requests["api_key"]),
        "jwt: signature and claims (get_validated_token)": lambda: jwt_auth.get_validated_token(jwt.encode()),
        "jwt: get_user (user + organization query)": lambda: jwt_auth.get_user(validated),
        "api_key: SHA-256 of the key": lambda: key_hash(key),
        "api_key: authenticate_key (key + creator + organization query)": lambda: authenticate_key(key),
    }
    block = 100
    per_block: dict[str, list[float]] = {name: [] for name in probes}
    for probe in probes.values():  # warm
        for _ in range(50):
            probe()
    names = list(probes)
    for order in _rotations(names, max(len(names), calls // block)):
        for name in order:
            probe = probes[name]
            start = time.perf_counter()
            for _ in range(block):
                probe()
            per_block[name].append((time.perf_counter() - start) * 1e6 / block)
    connection.close()
    return {name: statistics.median(values) for name, values in per_block.items()}


# --- load ------------------------------------------------------------------------------


def _post_script(token: str, paths: list[str]) -> str:
    listed = ", ".join(f'"{p}"' for p in paths)
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = '{SUMMARIZE_BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        f"local paths = {{{listed}}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i + 1\n"
        "  return wrk.format(nil, paths[(i % #paths) + 1])\n"
        "end\n"
    )


def wrk_post(port: int, token: str, paths: list[str], seconds: float, connections: int) -> dict:
    """bench._rest_load.wrk for POSTs (a Lua script cycling over `paths`): the same wrk flags
    and the same output parsing (requests/s, p50/p99 ms, requests, non-2xx + socket errors)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_post_script(token, paths))
    try:
        argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "--latency"]
        out = subprocess.run(
            [*argv, "-s", script.name, f"http://127.0.0.1:{port}{paths[0]}"],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    dist = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": load._ms(dist.get("50", "nan")),
        "p99_ms": load._ms(dist.get("99", "nan")),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "errors": (int(non2xx.group(1)) if non2xx else 0) + (sum(int(x) for x in sock.groups()) if sock else 0),
    }


async def _open_loop(port: int, requests: list[bytes], ok: int, rate: float, seconds: float) -> dict:
    """bench._rest_load.open_loop for any request (cycled): sent at a fixed rate whatever the
    answers do, latency from the scheduled send time to the last byte."""
    loop = asyncio.get_running_loop()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    state = {"opened": 0, "errors": 0}
    latencies: list[float] = []

    async def connect():
        state["opened"] += 1
        return await asyncio.open_connection("127.0.0.1", port)

    for _ in range(2):
        idle.append(await connect())

    async def one(request: bytes, scheduled: float) -> None:
        conn = idle.pop() if idle else await connect()
        try:
            conn[1].write(request)
            status, _body = await asyncio.wait_for(load._read_response(conn[0]), timeout=10)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            state["errors"] += 1
            conn[1].close()
            return
        latencies.append((loop.time() - scheduled) * 1000)
        if status != ok:
            state["errors"] += 1
        idle.append(conn)

    count = max(1, int(rate * seconds))
    start = loop.time() + 0.05
    tasks = []
    for i in range(count):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(requests[i % len(requests)], scheduled)))
    await asyncio.gather(*tasks)
    for _reader, writer in idle:
        writer.close()
    return {"latencies_ms": latencies, "errors": state["errors"], "connections": state["opened"]}


def _http(method: str, port: int, path: str, token: str, body: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
    head += "Accept: application/json\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body.encode())}\r\n"
    return (head + "\r\n" + body).encode()


class LoadPath:
    """One measured path: how to load it closed-loop and open-loop with a token."""

    def __init__(self, name: str, port: int, summarize: list[str] | None = None):
        self.name, self.port, self.summarize = name, port, summarize

    def reset(self) -> None:
        if self.summarize:
            reset_jobs()

    def closed(self, token: str, seconds: float) -> dict:
        if self.summarize:
            return wrk_post(self.port, token, self.summarize, seconds, CONNECTIONS)
        return load.wrk(f"http://127.0.0.1:{self.port}{LIST_PATH}", token, seconds, CONNECTIONS)

    def open(self, token: str, rate: float, seconds: float) -> dict:
        if self.summarize:
            requests = [_http("POST", self.port, p, token, SUMMARIZE_BODY) for p in self.summarize]
            return asyncio.run(_open_loop(self.port, requests, 202, rate, seconds))
        return asyncio.run(_open_loop(self.port, [_http("GET", self.port, LIST_PATH, token)], 200, rate, seconds))


def closed_loop(server: load.Server, path: LoadPath, tokens: dict[str, str], rounds: int, seconds: float):
    runs: dict[str, list[dict]] = {arm: [] for arm in tokens}
    for arm in tokens:  # warm-up: connections, lazy imports, caches, the key's last_used_at
        path.reset()
        path.closed(tokens[arm], 2)
    for order in _rotations(list(tokens), rounds):
        for arm in order:
            path.reset()
            cpu = server.cpu_seconds()
            result = path.closed(tokens[arm], seconds)
            result["server_cpu_ms_per_request"] = (server.cpu_seconds() - cpu) * 1000 / max(1, result["requests"])
            if path.summarize:
                result["handed_to_broker"] = broker_queue_length()
            runs[arm].append(result)
    return runs


def fixed_rate(path: LoadPath, tokens: dict[str, str], rate: float, rounds: int, seconds: float):
    runs: dict[str, list[dict]] = {arm: [] for arm in tokens}
    for order in _rotations(list(tokens), rounds):
        for arm in order:
            path.reset()
            result = path.open(tokens[arm], rate, seconds)
            lat = result.pop("latencies_ms")
            result.update(p50_ms=median(lat), p99_ms=percentile(lat, 99), count=len(lat))
            runs[arm].append(result)
    return runs


def _rate_for(rps: float) -> float:
    """A quarter of the baseline's closed-loop capacity (5 to MAX_RATE req/s), as rest_list."""
    return float(min(MAX_RATE, max(5, 5 * round(rps * 0.25 / 5))))


# --- the run ---------------------------------------------------------------------------


def _check_answers(port: int, tokens: dict[str, str], paths: list[str], user) -> str:
    """Both credentials get the same list and a 202 for summarize, as the same user."""
    import urllib.request

    from jobs.models import Job
    from organizations.models import ApiKey

    def call(method, path, token, body=None):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}",
            data=body.encode() if body else None,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())

    lists = {arm: call("GET", LIST_PATH, token) for arm, token in tokens.items()}
    if lists["jwt"] != lists["api_key"] or lists["jwt"][0] != 200 or len(lists["jwt"][1]["results"]) != PAGE_SIZE:
        raise SystemExit("the JWT and the API key do not get the same list")
    for arm, token in tokens.items():
        status, job = call("POST", paths[0], token, SUMMARIZE_BODY)
        row = Job.unscoped_objects.get(pk=job["id"])
        if status != 202 or row.created_by_id != user.pk or row.org_id != user.org_id:
            raise SystemExit(f"summarize with the {arm} answered {status}, job {job}")
    handed = broker_queue_length()
    if handed < 2:
        raise SystemExit(f"the scheduling rounds handed {handed} of 2 jobs to the broker")
    if ApiKey.unscoped_objects.get(org=user.org, name="bench auth_cost").last_used_at is None:
        raise SystemExit("the API key was not used")
    return "same list page (200, 50 rows) and a 202 with a job created by the user, for both; both jobs in the broker"


def run(scale: str) -> dict:
    started = time.perf_counter()
    cfg = SCALES[scale]
    setup_django(DB, REDIS_DB, **EXTRA_ENV)
    import redis

    if not load.wrk_available():
        raise SystemExit("wrk is required: apt-get install -y wrk")
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()  # this benchmark's own Redis db
    seeded = seed(cfg["documents"])
    system_templates()
    user, jwt, key = credentials()
    tokens = {"jwt": jwt, "api_key": key}
    paths = summarize_paths(user)
    org_docs = cfg["documents"] // ORGS
    reset_jobs()

    env = bench_env(DB, REDIS_DB, **EXTRA_ENV)
    server = _server("precis", PRECIS_APP, env)
    with Capacity():
        sql = {arm: statements(token, paths) for arm, token in tokens.items()}
        reset_jobs()
        auth_us = auth_only(jwt, key, cfg["auth_calls"])
        try:
            server.__enter__()
            checked = _check_answers(server.port, tokens, paths, user)
            measured = {}
            for path in (LoadPath("list", server.port), LoadPath("summarize", server.port, summarize=paths)):
                closed = closed_loop(server, path, tokens, cfg["rounds"], cfg["seconds"])
                rate = _rate_for(_med(closed, "rps")["jwt"])
                fixed = fixed_rate(path, tokens, rate, cfg["rate_rounds"], cfg["rate_seconds"])
                measured[path.name] = {"closed": closed, "fixed": fixed, "rate": rate}
            reset_jobs()
        finally:
            server.stop()

    figures, details = [], {}
    verdicts, cpu_jwt = {}, {}
    for name, m in measured.items():
        closed, fixed, rate = m["closed"], m["fixed"], m["rate"]
        rps, p50, p99 = _med(closed, "rps"), _med(closed, "p50_ms"), _med(closed, "p99_ms")
        cpu = _med(closed, "server_cpu_ms_per_request")
        cpu_jwt[name] = cpu["jwt"]
        rate_p50, rate_p99 = _med(fixed, "p50_ms"), _med(fixed, "p99_ms")
        # per round: the key's run against the JWT's of the same round
        per_round = [k["rps"] / j["rps"] for j, k in zip(closed["jwt"], closed["api_key"], strict=True)]
        throughput = rps["api_key"] / rps["jwt"]
        latency = rate_p50["api_key"] / rate_p50["jwt"]
        verdicts[name] = throughput >= TARGET
        label = "list" if name == "list" else "summarize"
        figures += [
            figure(f"{label}: throughput, API key / JWT", throughput, f"≥ {TARGET:.2f}", throughput >= TARGET, "×"),
            figure(
                f"{label}: p50 at a fixed {rate:g} req/s, API key / JWT",
                latency,
                "reported (≤ 1.1 would be 10 %)",
                True,
                "×",
            ),
        ]
        what = f"GET {LIST_PATH}" if name == "list" else "POST …/summarize/"
        details[f"{what}: requests/s, JWT (rounds)"] = f"{rps['jwt']:.0f} ({_each(closed['jwt'], 'rps')})"
        details[f"{what}: requests/s, API key (rounds)"] = f"{rps['api_key']:.0f} ({_each(closed['api_key'], 'rps')})"
        details[f"{what}: API key / JWT per round (median)"] = (
            ", ".join(f"{r:.3f}" for r in per_round) + f" ({median(per_round):.3f})"
        )
        details[f"{what}: latency p50 / p99 under load ({CONNECTIONS} connections), JWT / API key"] = (
            f"{p50['jwt']:.1f} / {p99['jwt']:.1f} ms; {p50['api_key']:.1f} / {p99['api_key']:.1f} ms "
            f"(p50 ratio {p50['api_key'] / p50['jwt']:.3f}, p99 ratio {p99['api_key'] / p99['jwt']:.3f})"
        )
        details[f"{what}: latency p50 / p99 at {rate:g} req/s (open loop), JWT / API key"] = (
            f"{rate_p50['jwt']:.2f} / {rate_p99['jwt']:.2f} ms; {rate_p50['api_key']:.2f} / "
            f"{rate_p99['api_key']:.2f} ms (p99 ratio {rate_p99['api_key'] / rate_p99['jwt']:.3f})"
        )
        details[f"{what}: server-process CPU per request, JWT / API key"] = (
            f"{cpu['jwt']:.2f} / {cpu['api_key']:.2f} ms ({cpu['api_key'] / cpu['jwt']:.3f}x)"
        )
        errors = {a: sum(r["errors"] for r in closed[a]) + sum(r["errors"] for r in fixed[a]) for a in ARMS}
        details[f"{what}: non-2xx / socket errors, JWT / API key"] = f"{errors['jwt']} / {errors['api_key']}"
        if name == "summarize":
            handed = {a: sum(r["handed_to_broker"] for r in closed[a]) for a in ARMS}
            made = {a: sum(r["requests"] for r in closed[a]) for a in ARMS}
            details["summarize: jobs handed to the broker / requests answered (closed loop), JWT / API key"] = (
                f"{handed['jwt']} / {made['jwt']}; {handed['api_key']} / {made['api_key']}"
            )
    details["authentication alone (DRF's chain, in process, autocommit): µs per call, JWT / API key"] = (
        f"{auth_us['jwt']:.0f} / {auth_us['api_key']:.0f} (difference {auth_us['api_key'] - auth_us['jwt']:+.0f} µs)"
    )
    details["parts of it, µs per call"] = "; ".join(
        f"{name} {us:.0f}" for name, us in auth_us.items() if name not in ARMS
    )
    extra_us = auth_us["api_key"] - auth_us["jwt"]
    counts = {arm: {p: len(q) for p, q in sql[arm].items()} for arm in ARMS}
    details["SQL statements per request (BEGIN/COMMIT/SAVEPOINT not counted), list / summarize, JWT; API key"] = (
        f"{counts['jwt']['list']} / {counts['jwt']['summarize']}; "
        f"{counts['api_key']['list']} / {counts['api_key']['summarize']}"
    )
    details["authentication query, JWT"] = _first(sql["jwt"]["list"], "accounts_user")
    details["authentication query, API key"] = _first(sql["api_key"]["list"], "organizations_apikey")
    details["answers checked"] = checked
    details["data set"] = "seeded now" if not seeded["reused"] else "reused from an earlier run"
    details["wall time"] = f"{time.perf_counter() - started:.0f} s"

    both = all(verdicts.values())
    result = {
        "title": "Authentication cost: API keys vs JWT",
        "method": (
            "`.venv/bin/python -m bench.auth_cost --scale small|full`. One Precis server (daphne "
            "`config.asgi:application`, project settings, DRF's authentication chain ApiKeyAuthentication then "
            "TenantJWTAuthentication) loaded by the same user of the same organization with `Authorization: Bearer "
            "<jwt>` (the baseline, from `accounts.tokens.token_pair_for`) and with `Authorization: Bearer pk_…` (a "
            "read/write key of the user's role, `organizations.api_keys.api_key_create`), on two paths: "
            f"`GET {LIST_PATH}` (org 0, {org_docs:,} documents in it) and `POST /api/v1/documents/{{id}}/summarize/` "
            f"with `{SUMMARIZE_BODY}` cycling over {SUMMARIZE_DOCUMENTS} of the org's documents (each POST creates a "
            "queued job in its own transaction and runs a scheduling round). No worker runs: a stand-in "
            "registers worker capacity for the `summaries` queue in the broker's Redis (db 9), so each round "
            "hands the new job to the broker, where the jobs pile up; before every run the jobs, their stored "
            "events and the broker queue are deleted. Under load: wrk, 1 thread, "
            f"{CONNECTIONS} connections (closed loop; POSTs through a Lua script), {cfg['rounds']} rounds of "
            f"{cfg['seconds']} s per path, the order of JWT and API key swapped every round, after a 2 s warm-up "
            "each; medians of rounds. Latency at a fixed moderate rate (a quarter of the JWT's closed-loop "
            "throughput on the path, at most 50 req/s, the same for both): an asyncio open-loop client (as "
            "bench/_rest_load.py's, for any request), latency from the scheduled send time to the last byte; "
            f"{cfg['rate_rounds']} alternating rounds of {cfg['rate_seconds']} s, p50 per run, median of rounds. "
            "Server CPU per request from /proc of the daphne process. Also: DRF's authentication chain alone "
            f"in this process ({cfg['auth_calls']:,} calls per probe in rotating blocks of 100) and the SQL "
            "of one request of each kind (django.test.Client, CaptureQueriesContext)."
        ),
        "data": (
            f"bench/rest_list.py's data set in its own database ({DB}): {cfg['documents']:,} documents over {ORGS} "
            "organizations, ~2.2 kB each, one or two summaries on every fifth; one admin user per organization, "
            "whose key is created afresh each run."
        ),
        "figures": figures,
        "details": details,
        "notes": (
            f"Target (the issue): API-key authentication costs at most 10 % per request on each path, i.e. "
            f"the key's throughput ≥ {TARGET:.2f}x the JWT's: "
            + (
                "met on both paths. "
                if both
                else "missed on " + ", ".join(n for n, v in verdicts.items() if not v) + ". "
            )
            + "The key's lookup is one indexed query (`key_hash`, unique) joined with its creator and the "
            "creator's organization, the same shape as the JWT's user-and-organization query, plus a "
            "`last_used_at` UPDATE at most once a minute per key; the JWT pays an HS256 signature check and "
            "claim validation instead of a SHA-256 of the key. In this process the key's chain costs "
            f"{extra_us:+.0f} µs a request against the JWT's (see the parts: the difference is the key's "
            "ORM query, which builds three models through a two-level select_related, against get_user's "
            f"two), i.e. {extra_us / 10 / cpu_jwt['list']:+.1f} % of the JWT's "
            f"server CPU per list request and {extra_us / 10 / cpu_jwt['summarize']:+.1f} % per summarize "
            "request. Without a registered worker a scheduling round hands nothing to the broker (no free "
            "slot: jobs.capacity), hence the stand-in. All of it shares the machine's 2 cores with wrk, "
            "PostgreSQL, Redis and whatever else runs there; absolute numbers move with the machine's noise, "
            "the ratios come from alternating rounds, and a difference of a few percent is within the "
            "run-to-run spread of the throughput ratio on a shared machine."
        ),
    }
    save_result(NAME, scale, result)
    return result


def _first(statements_: list[str], table: str) -> str:
    for sql in statements_:
        head, _, tail = sql.partition(" FROM ")
        if table in tail.split(" WHERE ")[0]:
            return f"`SELECT … FROM {tail[:400]}` ({head.count(',') + 1} columns)"
    return "none"


if __name__ == "__main__":
    print_result(run(parse_scale()))
