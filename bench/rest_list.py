"""REST list vs the raw limit: `GET /api/v1/documents/?page_size=50` served by Precis
(daphne + Django + DRF) against a minimal ASGI handler doing the same work on the same
server (bench/_rest_raw.py), loaded alternately in rounds with wrk; a plain Django view
doing the raw handler's work (bench/_rest_django.py) is measured alongside as the floor
of anything served by Django.

    .venv/bin/python -m bench.rest_list --scale small|full
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
import uuid
from urllib.parse import urlsplit

from bench import _rest_load as load
from bench._rest_text import TextFactory, sha256_hex
from bench.common import bench_env, figure, median, parse_scale, percentile, save_result, setup_django

NAME = "rest_list"
DB = "precis_bench_rest"
REDIS_DB = 8
ORGS = 10
PAGE_SIZE = 50
PATH = f"/api/v1/documents/?page_size={PAGE_SIZE}"
EXTRA_ENV = {"JWT_ACCESS_MINUTES": "600", "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver"}

SCALES = {
    # documents, wrk rounds, seconds per wrk run, fixed-rate rounds, seconds per fixed-rate run
    "small": {"documents": 10_000, "rounds": 4, "seconds": 8, "rate_rounds": 6, "rate_seconds": 3},
    "full": {"documents": 100_000, "rounds": 5, "seconds": 15, "rate_rounds": 10, "rate_seconds": 6},
}
CONNECTIONS = 8  # wrk closed loop
MAX_RATE = 50  # requests/s, cap of the fixed rate for the latency figure
SEED_VERSION = "rest-list-v1"


# --- data --------------------------------------------------------------------------


def seed(documents: int) -> dict:
    """10 orgs, one user each, `documents` documents (round-robin over the orgs, distinct
    created_at, ~2 kB content), one or two summaries on every fifth document. Reused when
    the database already holds exactly this data set."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django_scopes import scopes_disabled

    from accounts.models import User
    from documents.models import Document
    from organizations.models import Organization
    from summaries.models import Summary

    with scopes_disabled():
        orgs = list(Organization.objects.filter(slug__startswith="bench-rest-").order_by("slug"))
        marker = f"{SEED_VERSION}:{documents}"
        if (
            len(orgs) == ORGS
            and all(o.name.endswith(marker) for o in orgs)
            and Document.unscoped_objects.count() == documents
        ):
            return {"reused": True, "seconds": 0.0}
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE documents_document, summaries_summary, accounts_user, organizations_organization CASCADE"
            )
        password = make_password("bench-password-0123456789")
        orgs = Organization.objects.bulk_create(
            [Organization(name=f"Bench org {i} {marker}", slug=f"bench-rest-{i:02d}") for i in range(ORGS)]
        )
        users = User.objects.bulk_create(
            [
                User(email=f"bench{i}@rest.bench.test", org=org, role="admin", password=password)
                for i, org in enumerate(orgs)
            ]
        )
        factory = TextFactory()
        base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        batch: list[Document] = []
        summaries: list[Summary] = []
        for i in range(documents):
            org_index = i % ORGS
            title, content = factory.document(i)
            kind = i % 10
            source, source_ref, file = "manual", "", ""
            doc_id = uuid.uuid4()
            if kind in (1, 2):
                source, file = "upload", f"documents/{orgs[org_index].id}/{doc_id}/report-{i}.txt"
            elif kind == 3:
                source, source_ref = "url", f"https://example.com/articles/{i}"
            batch.append(
                Document(
                    id=doc_id,
                    org=orgs[org_index],
                    title=title,
                    content=content,
                    source=source,
                    source_ref=source_ref,
                    file=file,
                    metadata={"lang": "en", "tags": ["bench", f"t{i % 7}"], "pages": 1 + i % 5},
                    char_count=len(content),
                    sha256=sha256_hex(content),
                    created_by=users[org_index],
                    created_at=base + dt.timedelta(seconds=i, microseconds=i % 997),
                )
            )
            if i % 5 == 0:
                for k in range(1 + (i % 2)):
                    summaries.append(
                        Summary(
                            org=orgs[org_index],
                            document_id=doc_id,
                            content=f"Summary {k} of document {i}.",
                            provider="local",
                            source_sha256=batch[-1].sha256,
                            prompt_sha256="0" * 64,
                        )
                    )
            if len(batch) >= 1000:
                Document.unscoped_objects.bulk_create(batch)
                Summary.unscoped_objects.bulk_create(summaries)
                batch, summaries = [], []
        Document.unscoped_objects.bulk_create(batch)
        Summary.unscoped_objects.bulk_create(summaries)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE documents_document")
            cursor.execute("ANALYZE summaries_summary")
        return {"reused": False, "seconds": time.perf_counter() - started}


def bench_user():
    from accounts.models import User

    return User.objects.select_related("org").get(email="bench0@rest.bench.test")


# --- queries per request -------------------------------------------------------------


def count_queries(token: str) -> dict[int, list[str]]:
    """Non-SAVEPOINT SQL statements per list request, through django.test.Client."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    out: dict[int, list[str]] = {}
    for size in (1, 10, 50, 100):
        path = f"/api/v1/documents/?page_size={size}"
        client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")  # warm
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200, response.content[:300]
        assert len(response.json()["results"]) == size
        out[size] = [q["sql"] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"].upper()]
    connection.close()
    return out


# --- same answer ---------------------------------------------------------------------


def fetch(port: int, path: str, token: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def same_answer(precis: dict, raw: dict) -> tuple[bool, str]:
    if precis["results"] != raw["results"]:
        for a, b in zip(precis["results"], raw["results"], strict=False):
            if a != b:
                diff = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
                return False, f"results differ: {diff}"
        return False, f"results differ in length: {len(precis['results'])} vs {len(raw['results'])}"

    def strip(url):
        return None if url is None else urlsplit(url)._replace(netloc="")

    if strip(precis["next"]) != strip(raw["next"]) or precis["previous"] != raw["previous"]:
        return False, f"links differ: {precis['next']} vs {raw['next']}"
    return True, "identical results, next and previous links (apart from host:port)"


# --- the run -------------------------------------------------------------------------

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "RELEASE", "SAVEPOINT")
PRECIS_APP, RAW_APP = "config.asgi:application", "bench._rest_raw:application"
DJANGO_APP = "bench._rest_django:application"  # the floor: raw's work in a plain Django view


def _server(name: str, app: str, env: dict[str, str]) -> load.Server:
    port = load.free_port()
    argv = [str(load.VENV_BIN / "daphne"), "--access-log", "/dev/null", "-b", "127.0.0.1", "-p", str(port), app]
    probe = "/api/v1/" if app == PRECIS_APP else "/nothing/"
    return load.Server(name, argv, env, port, probe)


def _rotations(names: list[str], rounds: int):
    for r in range(rounds):
        k = r % len(names)
        yield names[k:] + names[:k]


def _closed_loop(servers: dict[str, load.Server], token: str, rounds: int, seconds: float) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {name: [] for name in servers}
    for server in servers.values():  # warm-up: connections, lazy imports, caches
        load.wrk(f"http://127.0.0.1:{server.port}{PATH}", token, 2, CONNECTIONS)
    with load.ConnectionSampler(DB) as backends:
        for order in _rotations(list(servers), rounds):
            for name in order:
                server = servers[name]
                cpu = server.cpu_seconds()
                result = load.wrk(f"http://127.0.0.1:{server.port}{PATH}", token, seconds, CONNECTIONS)
                result["server_cpu_ms_per_request"] = (server.cpu_seconds() - cpu) * 1000 / max(1, result["requests"])
                runs[name].append(result)
    for name, server in servers.items():
        for result in runs[name]:
            result["backends"] = backends.max.get(server.name, 0)
    return runs


def _fixed_rate(servers: dict[str, load.Server], token: str, rate: float, rounds: int, seconds: float):
    runs: dict[str, list[dict]] = {name: [] for name in servers}
    for order in _rotations(list(servers), rounds):
        for name in order:
            result = load.open_loop(servers[name].port, PATH, token, rate, seconds)
            lat = result.pop("latencies_ms")
            result.update(p50_ms=median(lat), p99_ms=percentile(lat, 99), count=len(lat))
            runs[name].append(result)
    return runs


def _med(runs: dict[str, list[dict]], key: str) -> dict[str, float]:
    return {name: median(r[key] for r in rs) for name, rs in runs.items()}


def _each(runs: list[dict], key: str) -> str:
    return ", ".join(f"{r[key]:.0f}" for r in runs)


def _ceiling(server: load.Server, token: str, seconds: float) -> dict:
    """The server alone: /ceiling/ answers the raw handler's last list body from memory."""
    cpu = server.cpu_seconds()
    result = load.wrk(f"http://127.0.0.1:{server.port}/ceiling/", token, seconds, CONNECTIONS)
    result["server_cpu_ms_per_request"] = (server.cpu_seconds() - cpu) * 1000 / max(1, result["requests"])
    return result


def _start(servers: dict[str, load.Server]) -> None:
    for server in servers.values():
        server.__enter__()


def _stop(servers: dict[str, load.Server]) -> None:
    for server in servers.values():
        server.stop()


def run(scale: str) -> dict:
    started = time.perf_counter()
    cfg = SCALES[scale]
    setup_django(DB, REDIS_DB, **EXTRA_ENV)
    from accounts.tokens import token_pair_for

    if not load.wrk_available():
        raise SystemExit("wrk is required: apt-get install -y wrk")
    seeded = seed(cfg["documents"])
    token = token_pair_for(bench_user())["access"]
    statements = count_queries(token)
    queries = {
        size: [q for q in sqls if not q.upper().startswith(TRANSACTION_CONTROL)] for size, sqls in statements.items()
    }
    counts = {size: len(q) for size, q in queries.items()}
    org_docs = cfg["documents"] // ORGS

    env = bench_env(DB, REDIS_DB, **EXTRA_ENV)
    servers = {
        "precis": _server("precis", PRECIS_APP, env),
        "django": _server("django", DJANGO_APP, env),
        "raw": _server("raw", RAW_APP, env),
    }
    try:
        _start(servers)
        precis_answer = fetch(servers["precis"].port, PATH, token)
        for other in ("raw", "django"):
            ok, how = same_answer(precis_answer, fetch(servers[other].port, PATH, token))
            if not ok:
                raise SystemExit(f"the {other} handler does not answer like Precis: {how}")
        closed = _closed_loop(servers, token, cfg["rounds"], cfg["seconds"])
        rps = _med(closed, "rps")
        # A moderate rate: a quarter of Precis' closed-loop capacity (at most 50 req/s), the same for all.
        rate = float(min(MAX_RATE, max(5, 5 * round(rps["precis"] * 0.25 / 5))))
        fixed = _fixed_rate(servers, token, rate, cfg["rate_rounds"], cfg["rate_seconds"])
        ceiling = _ceiling(servers["raw"], token, cfg["seconds"] / 2)
    finally:
        _stop(servers)

    p50, p99, cpu = _med(closed, "p50_ms"), _med(closed, "p99_ms"), _med(closed, "server_cpu_ms_per_request")
    rate_p50, rate_p99 = _med(fixed, "p50_ms"), _med(fixed, "p99_ms")
    errors = {n: sum(r["errors"] for r in closed[n]) + sum(r["errors"] for r in fixed[n]) for n in servers}
    backends = {n: max(r["backends"] for r in closed[n]) for n in servers}

    # Is the ASGI server the bottleneck? Its own CPU per request (same body) against each handler's.
    share_raw = ceiling["server_cpu_ms_per_request"] / cpu["raw"]
    share_precis = ceiling["server_cpu_ms_per_request"] / cpu["precis"]
    throughput = rps["precis"] / rps["raw"]
    latency = rate_p50["precis"] / rate_p50["raw"]
    figures = [
        figure("throughput, Precis / raw", throughput, "≥ 0.5", throughput >= 0.5, "×"),
        figure(f"p50 at a fixed {rate:g} req/s, Precis / raw", latency, "≤ 2", latency <= 2, "×"),
        figure(
            "SQL queries per list request, page size 1/10/50/100 (BEGIN/COMMIT not counted)",
            max(counts.values()),
            "≤ 3, constant",
            max(counts.values()) <= 3 and len(set(counts.values())) == 1,
        ),
    ]
    details = {}
    for name in servers:
        details[f"requests/s, {name} (rounds)"] = f"{rps[name]:.0f} ({_each(closed[name], 'rps')})"
    for name in servers:
        details[f"latency p50 / p99 under load ({CONNECTIONS} connections), {name}"] = (
            f"{p50[name]:.1f} / {p99[name]:.1f} ms"
        )
    for name in servers:
        details[f"latency p50 / p99 at {rate:g} req/s (open loop), {name}"] = (
            f"{rate_p50[name]:.2f} / {rate_p99[name]:.2f} ms"
        )
    details["server-process CPU per request, " + " / ".join(servers)] = (
        " / ".join(f"{cpu[n]:.2f}" for n in servers) + " ms"
    )
    details["plain Django view (Precis' handler, settings and middleware; raw's SQL and JSON) / raw"] = (
        f"throughput {rps['django'] / rps['raw']:.2f}x, "
        f"p50 at {rate:g} req/s {rate_p50['django'] / rate_p50['raw']:.2f}x"
    )
    details["Precis / plain Django view (what DRF and the ORM add)"] = (
        f"throughput {rps['precis'] / rps['django']:.2f}x, CPU per request {cpu['precis'] / cpu['django']:.2f}x"
    )
    details["daphne alone, same body from memory: requests/s, CPU per request"] = (
        f"{ceiling['rps']:.0f}, {ceiling['server_cpu_ms_per_request']:.2f} ms "
        f"(= {share_raw:.0%} of raw's server CPU per request, {share_precis:.0%} of Precis')"
    )
    details["non-2xx / socket errors over all runs, " + " / ".join(servers)] = " / ".join(
        str(errors[n]) for n in servers
    )
    details["most PostgreSQL connections open at once under load, " + " / ".join(servers)] = " / ".join(
        str(backends[n]) for n in servers
    )
    details["SQL queries at page size 1 / 10 / 50 / 100"] = " / ".join(str(counts[s]) for s in (1, 10, 50, 100))
    details["all captured statements at page size 1 / 10 / 50 / 100"] = (
        " / ".join(str(len(statements[s])) for s in (1, 10, 50, 100))
        + " ("
        + ", ".join(q.split()[0] for q in statements[50])
        + ")"
    )
    details["response check"] = how
    details["data set"] = "reused" if seeded["reused"] else f"seeded in {seeded['seconds']:.0f} s"
    details["run time"] = f"{time.perf_counter() - started:.0f} s"

    if share_raw >= 0.3:
        bottleneck = (
            f"daphne's own work is {share_raw:.0%} of the raw handler's CPU per request, a large share of the raw "
            "limit: compare with another server (e.g. uvicorn) before reading the ratio as Django's overhead."
        )
    else:
        bottleneck = (
            f"the ASGI server is not the bottleneck: daphne's own work is {share_raw:.0%} of the raw handler's CPU "
            f"per request and {share_precis:.0%} of Precis' (so another server, e.g. uvicorn, could not change the "
            "ratio much; not measured)."
        )
    pool_note = (
        " Precis uses a psycopg connection pool per process (config/settings/base.py DATABASES OPTIONS pool, "
        "CONN_MAX_AGE 0); before it, CONN_MAX_AGE under ASGI opened a PostgreSQL connection per request (a fresh "
        "thread per request, connections per thread) and ended in `too many clients` and 503s under this load."
    )
    floor = rps["django"] / rps["raw"]
    floor_note = (
        "The floor, measured in the same rounds: the raw handler's SQL and JSON in a plain Django view "
        "(bench/_rest_django.py: Precis' settings, middleware, ATOMIC_REQUESTS, pool and ASGI handler; no DRF, "
        f"no ORM query building) reaches {floor:.2f}x the raw handler's throughput at {cpu['django']:.2f} ms of "
        f"CPU per request, and DRF and the ORM take Precis from there to {throughput:.2f}x."
    )
    if floor < 0.5:
        floor_note += (
            " Django's request handling alone stays under 0.5x, so no rewrite of this endpoint inside Django "
            "meets the target. Meeting it would mean serving the endpoint outside Django (an async view would "
            "not do: Django still runs the sync middleware and the ORM in threads), with its own authentication, "
            "tenancy and error handling; we do not make that trade for one endpoint."
        )
    result = {
        "title": "REST list vs the raw limit",
        "method": (
            f"`GET {PATH}` with a Bearer JWT (org 0, {org_docs:,} documents in it) against Precis (daphne "
            "`config.asgi:application`: Django + DRF, project settings) and against `bench/_rest_raw.py`, a bare "
            "ASGI handler on the same daphne doing the same work: PyJWT decode (HS256, same key, exp/token_type/jti), "
            "one query for the user joined with the org (active, same org, password-hash claim), the same page SQL "
            "(LIST_FIELDS columns, 300-character excerpt, summary_count subquery, org filter, created_at desc, "
            "limit 51) in one transaction over async psycopg (pool of 2 connections), the same JSON (checked equal "
            "to Precis' answer before loading), and against the floor in between, `bench/_rest_django.py`: the raw "
            "handler's SQL and JSON in a plain Django view served by Precis' own ASGI handler, settings and "
            "middleware (answer checked equal too). Under load: wrk, 1 thread, "
            f"{CONNECTIONS} connections (closed loop), {cfg['rounds']} rounds of {cfg['seconds']} s rotating the "
            "order of the servers after a 2 s warm-up each; medians of rounds. Latency at a fixed moderate rate: a "
            "Python asyncio open-loop client (bench/_rest_load.py) sending requests at a fixed rate (a quarter of "
            "Precis' closed-loop throughput, at most 50 req/s, the same rate for every server) on keep-alive "
            "connections (a new one only when all are busy), latency from each request's scheduled send time to "
            f"its last byte (no coordinated omission); {cfg['rate_rounds']} rotating rounds of "
            f"{cfg['rate_seconds']} s, p50 per run, median of rounds. Queries: django.test.Client + "
            "CaptureQueriesContext at page_size 1/10/50/100. Server CPU per request from /proc of the server "
            "process; the server's own cost: wrk on raw's `/ceiling/` (the same list body from memory)."
        ),
        "data": (
            f"{cfg['documents']:,} documents over {ORGS} organizations (bulk_create, ~2.2 kB English-like text each, "
            "distinct created_at, 70% manual / 20% upload with a file / 10% url), one or two summaries on every fifth "
            "document; one admin user per organization."
        ),
        "figures": figures,
        "details": details,
        "notes": (
            f"Bottleneck: {bottleneck}{pool_note} Precis spends its time in Python. Rows are built from "
            "`.values()` dicts by a plain function (documents/serializers.py `document_list_row`; a DRF "
            "ModelSerializer per row cost about 0.1 ms per row: 18.0 ms of server CPU per request at small "
            "scale before, about 10 ms after). Django's ASGIHandler made about ten thread round trips per request "
            "(the outer sync middleware in a thread, back to the event loop for the async-capable ones, where each "
            "MiddlewareMixin runs process_request and process_response through sync_to_async, then process_view "
            "and the view): config/asgi_http.py `OneHopASGIHandler` runs the sync stack and the view in one "
            "(config/tests/test_asgi_http.py counts 3 against Django's 10), and timestamps are parsed by "
            "psycopg's C loader instead of Django's pure-Python one (config/postgres.py). A py-spy profile "
            "(GIL samples) of Precis' daphne under wrk after that, at small scale: the event-loop thread 40 % "
            "(daphne and Twisted's HTTP, Django's async request handling: a new thread per request for its "
            "ThreadSensitiveContext, the request_started signal, a disconnect-listener task next to the "
            "response task), the request thread 55 %: DRF's dispatch 39 % (the list view 27 %: the page query "
            "13 %, building the annotated queryset 7 %, rows 2 %; authentication, the user + org query, 11 %), "
            "JSON rendering 8 %, the middleware stack and Django's handler the rest. The raw handler needs "
            f"{cpu['raw'] / cpu['precis']:.0%} of Precis' CPU per request. {floor_note} "
            "The fixed rate is a quarter of Precis' capacity rather than a flat 50 req/s because "
            "50 req/s is close to Precis' whole "
            "capacity on this machine, where its p50 would measure queueing, not service time. Queries: Django "
            "(4.2+) also logs the BEGIN and COMMIT of ATOMIC_REQUESTS, so the strict non-SAVEPOINT count is 4 "
            "statements (see details). All servers share the 2 cores with wrk and PostgreSQL; absolute numbers "
            "move with the machine's noise, the ratios come from interleaved rounds."
        ),
    }
    save_result(NAME, scale, result)
    return result


if __name__ == "__main__":
    out = run(parse_scale())
    print(json.dumps({"figures": out["figures"], "details": out["details"]}, indent=2, ensure_ascii=False))
