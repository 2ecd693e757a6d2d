"""WebSocket fan-out: /ws/events/ on one daphne process against a bare `websockets`
broadcast server (bench/_ws_baseline.py) holding the same number of sockets.

    .venv/bin/python -m bench.websocket --scale small|full

- N sockets over 10 organizations connect to each server from two client processes
  (bench/_ws_client.py); on daphne each authenticates with its own user's access token
  (`Sec-WebSocket-Protocol: bearer, <token>`), one user per socket;
- in each round one event per organization is published: on Precis with
  `realtime.events.send_now([build_event(...)])` from this process, which stands in for a
  Celery worker and publishes as one does (`realtime.sender.use_background_loop()`, as
  config/celery.py calls at worker start: the event is stored in one SQL statement, then
  group_send runs on one long-lived event loop through channels-redis), on the baseline
  with a trigger message; rounds alternate which server goes first, and every socket's
  latency is its arrival time minus the publish time (`time.monotonic()`, the same clock
  in every process of the machine);
- every socket must get every event of its own org and none of any other org;
- idle cost: CPU of the daphne process over 10 s with the sockets open and quiet, and
  over one full `REALTIME_RECHECK_S` period (each socket re-reads its user once per
  period), and RSS growth per connected socket.

The app itself now has the changes this benchmark used to measure as `--with-fixes layer,dispatch,
gc-freeze`: the channel layer `realtime.layers.PrecisRedisChannelLayer` (a blocking connection pool,
socket_timeout 15 s; config/settings/base.py), `EventsConsumer.dispatch` without channels'
close_old_connections hop per live event (realtime/consumers.py) and `gc.freeze()` at the end of
config/asgi.py; every run measures them.

`--with-fixes gc-threshold` runs the same measurement with a change applied inside this harness
(see FIXES; nothing in the app is edited) and `--profile DIR` records py-spy profiles; both print
their result instead of saving it.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench._ws_procs import Client, Processes, ask_all, cpu_percent, free_port, raise_nofile, rss_bytes, wait_for_port
from bench.common import (
    ROOT,
    bench_env,
    figure,
    median,
    parse_scale,
    percentile,
    print_result,
    save_result,
    setup_django,
)

DB_NAME = "precis_bench_ws"
REDIS_DB = 6
ORGS = 10
CONFIG = {
    # sockets per server, measured rounds, idle window (s)
    "small": {"sockets": 200, "rounds": 10, "idle_s": 10.0},
    "full": {"sockets": 1000, "rounds": 20, "idle_s": 10.0},
}
P99_RATIO_TARGET = 3.0
IDLE_CPU_TARGET = 5.0  # % of one core
KIB_PER_SOCKET_TARGET = 100.0
CLIENTS = 2
FIXES = {
    "gc-threshold": "gc.set_threshold(50_000, 20, 100) (bench/_ws_asgi.py)",
}
PASSWORD_HASH_SOURCE = "bench-ws-password-not-used-for-login"


def prepare_tenants(sockets_per_org: int):
    """10 organizations with one member per socket (a stable set, reused between runs)."""
    from django.contrib.auth.hashers import make_password

    from accounts.models import Role, User
    from organizations.models import Organization
    from realtime.models import StoredEvent

    orgs = []
    for i in range(ORGS):
        org, _ = Organization.objects.get_or_create(slug=f"bench-ws-{i:02d}", defaults={"name": f"Bench WS {i:02d}"})
        if not org.is_active:
            org.is_active = True
            org.save(update_fields=["is_active"])
        orgs.append(org)
    StoredEvent.unscoped_objects.filter(org__in=orgs).delete()
    password = None
    users: dict[str, list] = {}
    for org in orgs:
        have = list(User.objects.filter(org=org, is_active=True).order_by("email")[:sockets_per_org])
        missing = sockets_per_org - len(have)
        if missing > 0:
            password = password or make_password(PASSWORD_HASH_SOURCE)  # hashed once: users are bulk-created
            start = User.objects.filter(org=org).count()
            User.objects.bulk_create(
                [
                    User(
                        email=f"u{start + n:04d}@{org.slug}.bench.test",
                        org=org,
                        role=Role.ADMIN if start + n == 0 else Role.MEMBER,
                        password=password,
                    )
                    for n in range(missing)
                ]
            )
            have = list(User.objects.filter(org=org, is_active=True).order_by("email")[:sockets_per_org])
        users[str(org.id)] = have
    return orgs, users


def progress(message: str) -> None:
    print(f"[websocket] {message}", file=sys.stderr, flush=True)


def publish_precis(orgs, key: str) -> dict[str, float]:
    """One document.created per org, the app's way; returns each send_now's duration (ms) by org."""
    from realtime.events import build_event, send_now

    durations = {}
    for org in orgs:
        t0 = time.monotonic()
        send_now([build_event(org.id, "document.created", event_data(org, key, t0))])
        durations[str(org.id)] = (time.monotonic() - t0) * 1000
    return durations


def publish_baseline(control, orgs, key: str) -> dict[str, float]:
    """The same envelope, broadcast as is by the baseline server."""
    from realtime.events import build_event

    durations = {}
    for org in orgs:
        t0 = time.monotonic()
        envelope = build_event(org.id, "document.created", event_data(org, key, t0))["envelope"]
        control.send(json.dumps({"org": str(org.id), "message": json.dumps(envelope)}))
        durations[str(org.id)] = (time.monotonic() - t0) * 1000
    return durations


def publish_breakdown(orgs, repeats: int = 10) -> dict[str, float]:
    """The parts of send_now, timed apart (medians, ms): `store()` (one SQL statement on
    PostgreSQL); group_send through `realtime.sender.run` as send_now does it in a worker (one
    long-lived loop, its Redis pool kept); and, for comparison, group_send through
    `async_to_sync` as workers sent before (a new event loop, so a new Redis connection, per call).
    Run last: the stored events make the next live event look like a gap to the sockets."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from realtime import sender
    from realtime.events import build_event, org_group, store

    layer = get_channel_layer()
    stores, sends, per_call_loop = [], [], []
    for i in range(repeats):
        org = orgs[i % len(orgs)]
        event = build_event(org.id, "document.created", event_data(org, f"probe-{i}", time.monotonic()))
        t = time.monotonic()
        event = store([event])[0]
        stores.append((time.monotonic() - t) * 1000)
        message = {"type": "event.message", "event": {**event, "seq": None}}
        t = time.monotonic()
        sender.run(layer.group_send, org_group(org.id), message)
        sends.append((time.monotonic() - t) * 1000)
        t = time.monotonic()
        async_to_sync(layer.group_send)(org_group(org.id), message)
        per_call_loop.append((time.monotonic() - t) * 1000)
    return {"store_ms": median(stores), "group_send_ms": median(sends), "per_call_loop_ms": median(per_call_loop)}


def event_data(org, key: str, t0: float) -> dict:
    """A document.created payload of the usual shape and size, plus the benchmark's fields."""
    return {
        "id": "00000000-0000-4000-8000-000000000000",
        "title": "Quarterly report — benchmark document",
        "source": "upload",
        "source_ref": "",
        "content_type": "application/pdf",
        "char_count": 48213,
        "sha256": "0" * 64,
        "created_by": None,
        "created_at": "2025-01-01T00:00:00Z",
        "bench_key": key,
        "org": str(org.id),
        "t0": t0,
    }


def daphne_errors(log: Path) -> collections.Counter:
    """Consumer crashes in daphne's log, counted by message."""
    crashes: collections.Counter = collections.Counter()
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return crashes
    for line in text.splitlines():
        if "Exception inside application" not in line:
            continue
        try:
            message = json.loads(line).get("event", line)
        except ValueError:
            message = line
        crashes[message.replace("Exception inside application: ", "")[:160]] += 1
    return crashes


def start_profilers(procs: Processes, profile_dir: str | None, pids: dict[str, int]) -> list:
    """py-spy (PATH or BENCH_PYSPY; extra options such as --native in BENCH_PYSPY_ARGS)
    recording raw stacks of each process, all threads."""
    if not profile_dir:
        return []
    spy = os.environ.get("BENCH_PYSPY") or shutil.which("py-spy") or "py-spy"
    extra = os.environ.get("BENCH_PYSPY_ARGS", "").split()
    Path(profile_dir).mkdir(parents=True, exist_ok=True)
    spies = []
    for name, pid in pids.items():
        output = str(Path(profile_dir) / f"{name}.txt")
        blocking = [] if "--native" in extra else ["--nonblocking"]  # py-spy: --native must pause the process
        args = [spy, "record", "-p", str(pid), "-r", "250", "-f", "raw", *blocking, "-t", *extra, "-o", output]
        spies.append(procs.start(f"py-spy-{name}", args))
    return spies


def stop_profilers(spies: list) -> None:
    for spy in spies:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    for spy in spies:
        spy.wait(timeout=60)


def wait_round(clients, target: str, key: str, published: dict[str, float] | None = None, timeout: float = 5.0) -> dict:
    """Every socket's latency from the publish call's start, and (fanout) from its return."""
    answers = ask_all(
        clients, [{"cmd": "wait", "target": target, "key": key, "timeout": timeout}] * len(clients), timeout + 10
    )
    published = published or {}
    by_org = [(org, x) for a in answers for org, values in a["latencies_ms"].items() for x in values]
    missing_by_org: dict[str, int] = {}
    for a in answers:
        for org, count in a["missing_by_org"].items():
            missing_by_org[org] = missing_by_org.get(org, 0) + count
    return {
        "sockets": sum(a["sockets"] for a in answers),
        "latencies": [x for _, x in by_org],
        "fanout": [x - published.get(org, 0.0) for org, x in by_org],
        "missing": sum(a["missing"] for a in answers),
        "missing_by_org": missing_by_org,
        "cross_org": sum(a["cross_org"] for a in answers),  # cumulative per socket
        "unexpected": sum(a["unexpected"] for a in answers),  # cumulative per socket
        "closed": sum(a["closed"] for a in answers),
        "samples": [s for a in answers for s in a["unexpected_samples"]][:3],
        "close_codes": sorted({c for a in answers for c in a["close_codes"]}),
    }


def connect(clients, target: str, specs: list[dict], concurrency: int = 25) -> dict:
    shares = [specs[i :: len(clients)] for i in range(len(clients))]
    answers = ask_all(
        clients,
        [{"cmd": "connect", "target": target, "sockets": share, "concurrency": concurrency} for share in shares],
        timeout=300,
    )
    return {
        "connected": sum(a["connected"] for a in answers),
        "failed": sum(a["failed"] for a in answers),
        "errors": [e for a in answers for e in a["errors"]][:5],
        "seconds": max(a["seconds"] for a in answers),
    }


def close(clients, target: str) -> None:
    ask_all(clients, [{"cmd": "close", "target": target}] * len(clients), timeout=120)


def run(scale: str, fixes: frozenset[str] = frozenset(), profile_dir: str | None = None) -> dict:
    """The publisher (this process) sends like a Celery worker: `realtime.sender.use_background_loop()`
    first, as config/celery.py does at worker start.
    fixes (see FIXES; the channel layer, dispatch and gc.freeze() changes are in the app now):
    "gc-threshold" serves bench/_ws_asgi.py;
    profile_dir: py-spy records daphne and this process (the publisher) during the rounds.
    With either, the result is printed, not saved."""
    unknown = set(fixes) - set(FIXES)
    if unknown:
        raise ValueError(f"unknown fixes {sorted(unknown)}; known: {sorted(FIXES)}")
    config = CONFIG[scale]
    started = time.monotonic()
    nofile = raise_nofile()
    setup_django(DB_NAME, REDIS_DB)
    import redis
    from django.conf import settings
    from websockets.sync.client import connect as sync_connect

    from realtime import sender

    redis.Redis.from_url(settings.REDIS_URL).flushdb()  # db 6 is this benchmark's alone: no stale groups
    n = config["sockets"]
    per_org = n // ORGS
    orgs, users = prepare_tenants(per_org)
    recheck_s = float(settings.REALTIME_RECHECK_S)

    log_dir = Path(tempfile.mkdtemp(prefix="bench-ws-"))
    procs = Processes(log_dir)
    env = bench_env(DB_NAME, REDIS_DB)
    daphne_env = dict(env, BENCH_WS_FIXES=",".join(sorted(fixes)))
    asgi_app = "bench._ws_asgi:application" if "gc-threshold" in fixes else "config.asgi:application"
    daphne_port, baseline_port = free_port(), free_port()
    phases: dict[str, float] = {"setup": time.monotonic() - started}
    try:
        daphne = procs.start(
            "daphne",
            [
                str(ROOT / ".venv" / "bin" / "daphne"),
                "--access-log",
                "/dev/null",
                "-b",
                "127.0.0.1",
                "-p",
                str(daphne_port),
                asgi_app,
            ],
            env=daphne_env,
            cwd=str(ROOT),
        )
        baseline = procs.start(
            "baseline",
            [sys.executable, "-m", "bench._ws_baseline", "--port", str(baseline_port)],
            env=env,
            cwd=str(ROOT),
        )
        wait_for_port(daphne_port, daphne)
        wait_for_port(baseline_port, baseline)
        clients = [Client(procs, f"client{i}", env) for i in range(CLIENTS)]
        pids = {"precis": daphne.pid, "baseline": baseline.pid}
        precis_url = f"ws://127.0.0.1:{daphne_port}/ws/events/"
        baseline_url = f"ws://127.0.0.1:{baseline_port}"

        from accounts.tokens import token_pair_for

        # Tokens last JWT_ACCESS_MINUTES (15 by default): minted just before use.
        tokens = {str(u.id): token_pair_for(u)["access"] for org_users in users.values() for u in org_users}

        def precis_specs(org_users_by_org):
            return [
                {"url": precis_url, "org": org_id, "protocols": ["bearer", tokens[str(u.id)]]}
                for org_id, org_users in org_users_by_org.items()
                for u in org_users
            ]

        def baseline_specs(count_per_org):
            return [
                {"url": f"{baseline_url}/org/{org.id}", "org": str(org.id)}
                for org in orgs
                for _ in range(count_per_org)
            ]

        sender.use_background_loop()  # the publisher stands in for a worker: what config/celery.py does at start
        with sync_connect(f"{baseline_url}/trigger", compression=None, proxy=None, ping_interval=None) as control:
            # -- warm-up: imports, DB and Redis connections, code paths -------------------------
            t = time.monotonic()
            warm = connect(clients, "precis_warm", precis_specs({k: v[:1] for k, v in users.items()}))
            connect(clients, "baseline_warm", baseline_specs(1))
            if warm["failed"]:
                raise RuntimeError(f"warm-up sockets failed to connect: {warm['errors']}")
            for i in range(3):
                wait_round(clients, "precis_warm", f"warm-p{i}", publish_precis(orgs, f"warm-p{i}"))
                wait_round(clients, "baseline_warm", f"warm-b{i}", publish_baseline(control, orgs, f"warm-b{i}"))
            close(clients, "precis_warm")
            close(clients, "baseline_warm")
            time.sleep(2)
            phases["warm-up"] = time.monotonic() - t

            # -- connected, idle: memory and CPU ------------------------------------------------
            t = time.monotonic()
            idle_empty = cpu_percent(pids, 5)
            rss_before = {name: rss_bytes(pid) for name, pid in pids.items()}
            connected = {
                "precis": connect(clients, "precis", precis_specs(users)),
                "baseline": connect(clients, "baseline", baseline_specs(per_org)),
            }
            for name, result in connected.items():
                if result["failed"]:
                    raise RuntimeError(f"{name}: {result['failed']} sockets failed to connect: {result['errors']}")
            progress(f"connected {n} + {n} sockets")
            time.sleep(3)
            rss_after = {name: rss_bytes(pid) for name, pid in pids.items()}
            idle = cpu_percent(pids, config["idle_s"])
            phases["connect + idle"] = time.monotonic() - t

            # -- fan-out rounds, interleaved ----------------------------------------------------
            t = time.monotonic()
            spies = start_profilers(procs, profile_dir, {"daphne": daphne.pid, "publisher": os.getpid()})
            rounds: dict[str, list[dict]] = {"precis": [], "baseline": []}
            publish_ms: dict[str, list[float]] = {"precis": [], "baseline": []}
            totals = {target: {"expected": 0, "delivered": 0} for target in rounds}
            last: dict[str, dict] = {}
            for r in range(config["rounds"]):
                order = ["precis", "baseline"] if r % 2 == 0 else ["baseline", "precis"]
                for target in order:
                    key = f"{target}-{r}"
                    if target == "precis":
                        published = publish_precis(orgs, key)
                    else:
                        published = publish_baseline(control, orgs, key)
                    publish_ms[target] += published.values()
                    result = last[target] = wait_round(clients, target, key, published)
                    lat = result["latencies"]
                    rounds[target].append(
                        {
                            "p50": percentile(lat, 50),
                            "p99": percentile(lat, 99),
                            "fanout_p99": percentile(result["fanout"], 99),
                            "max": max(lat) if lat else float("nan"),
                            "missing": result["missing"],
                        }
                    )
                    totals[target]["expected"] += result["sockets"]
                    totals[target]["delivered"] += len(lat)
                    progress(
                        f"round {r} {target}: p99 {rounds[target][-1]['p99']:.1f} ms, missing {result['missing']}"
                        + (f" {result['missing_by_org']}" if result["missing_by_org"] else "")
                    )
                    time.sleep(0.3)
            stop_profilers(spies)
            if sender._loop is None:
                progress("send_now never used realtime.sender's background loop: not publishing as a worker does")
            phases["rounds"] = time.monotonic() - t

            # -- idle over a full recheck period ----------------------------------------------
            t = time.monotonic()
            idle_period = cpu_percent(pids, recheck_s)
            after_idle = wait_round(clients, "precis", "none", timeout=0)  # who is still connected
            breakdown = publish_breakdown(orgs)
            phases["idle period + breakdown"] = time.monotonic() - t

            close(clients, "precis")
            close(clients, "baseline")
            for client in clients:
                client.send({"cmd": "quit"})
    finally:
        procs.stop_all()

    p99 = {t: median(r["p99"] for r in rounds[t]) for t in rounds}
    p50 = {t: median(r["p50"] for r in rounds[t]) for t in rounds}
    fanout_p99 = {t: median(r["fanout_p99"] for r in rounds[t]) for t in rounds}
    worst = {t: max(r["max"] for r in rounds[t]) for t in rounds}
    ratio = p99["precis"] / p99["baseline"] if p99["baseline"] > 0 else float("inf")
    fanout_ratio = fanout_p99["precis"] / fanout_p99["baseline"] if fanout_p99["baseline"] > 0 else float("inf")
    pair_ratios = [a["p99"] / b["p99"] for a, b in zip(rounds["precis"], rounds["baseline"], strict=True) if b["p99"]]
    delivered = {t: 100 * totals[t]["delivered"] / totals[t]["expected"] for t in totals}
    cross_org = {t: last[t]["cross_org"] for t in last}
    kib = {t: (rss_after[t] - rss_before[t]) / 1024 / n for t in pids}
    runtime = time.monotonic() - started
    f1 = lambda v: f"{v:.1f}"  # noqa: E731

    figures = [
        figure(
            "p99 delivery latency, Precis / bare websockets",
            ratio,
            f"≤ {P99_RATIO_TARGET:g}×",
            ratio <= P99_RATIO_TARGET,
            "×",
        ),
        figure("events delivered (Precis)", delivered["precis"], "100 %", delivered["precis"] == 100, "%"),
        figure("cross-org deliveries (Precis)", cross_org["precis"], "0", cross_org["precis"] == 0),
        figure(
            f"idle CPU of daphne, {n} sockets, {config['idle_s']:g} s",
            idle["precis"],
            f"≤ {IDLE_CPU_TARGET:g} % of a core",
            idle["precis"] <= IDLE_CPU_TARGET,
            "%",
        ),
        figure(
            f"idle CPU of daphne, {n} sockets, one {recheck_s:g} s recheck period",
            idle_period["precis"],
            f"≤ {IDLE_CPU_TARGET:g} % of a core",
            idle_period["precis"] <= IDLE_CPU_TARGET,
            "%",
        ),
        figure(
            "memory per socket (daphne RSS growth / sockets)",
            kib["precis"],
            f"≤ {KIB_PER_SOCKET_TARGET:g} KiB",
            kib["precis"] <= KIB_PER_SOCKET_TARGET,
            "KiB",
        ),
    ]
    details = {
        "sockets per server / orgs / sockets per org": f"{n} / {ORGS} / {per_org}",
        "rounds (each: one event per org on each server)": config["rounds"],
        "p99 latency, Precis / baseline (median of rounds)": f"{f1(p99['precis'])} ms / {f1(p99['baseline'])} ms",
        "p50 latency, Precis / baseline (median of rounds)": f"{f1(p50['precis'])} ms / {f1(p50['baseline'])} ms",
        "p99 fan-out only (from the publish call's return), Precis / baseline; ratio": (
            f"{f1(fanout_p99['precis'])} ms / {f1(fanout_p99['baseline'])} ms; {fanout_ratio:.2f}×"
        ),
        "worst single delivery, Precis / baseline": f"{f1(worst['precis'])} ms / {f1(worst['baseline'])} ms",
        "p99 ratio per round pair: median (min–max)": (
            f"{median(pair_ratios):.2f} ({min(pair_ratios):.2f}–{max(pair_ratios):.2f})" if pair_ratios else "n/a"
        ),
        "p99 per round, Precis (ms)": ", ".join(f1(r["p99"]) for r in rounds["precis"]),
        "p99 per round, baseline (ms)": ", ".join(f1(r["p99"]) for r in rounds["baseline"]),
        "publish call per org, Precis `send_now`: median / max": (
            f"{f1(median(publish_ms['precis']))} ms / {f1(max(publish_ms['precis']))} ms"
        ),
        "timed apart (medians): `store()` / `group_send` via `realtime.sender.run` (one long-lived loop, "
        "as send_now in a worker) / `group_send` via `async_to_sync` (a new loop per call, as workers sent before)": (
            f"{f1(breakdown['store_ms'])} ms / {f1(breakdown['group_send_ms'])} ms / "
            f"{f1(breakdown['per_call_loop_ms'])} ms"
        ),
        "publish call per org, baseline trigger: median": f"{median(publish_ms['baseline']):.2f} ms",
        "delivered, Precis / baseline": (
            f"{totals['precis']['delivered']}/{totals['precis']['expected']} / "
            f"{totals['baseline']['delivered']}/{totals['baseline']['expected']}"
        ),
        "missing per round, Precis": ", ".join(str(r["missing"]) for r in rounds["precis"]),
        "sockets closed by the server during the run, Precis / baseline": (
            f"{after_idle['closed']} of {n} (close codes {', '.join(after_idle['close_codes']) or '–'}) / "
            f"{last['baseline']['closed']} of {n}"
        ),
        "cross-org / unexpected messages, Precis": f"{cross_org['precis']} / {last['precis']['unexpected']}",
        "cross-org / unexpected messages, baseline": f"{cross_org['baseline']} / {last['baseline']['unexpected']}",
        "connect time for all sockets, Precis / baseline": (
            f"{f1(connected['precis']['seconds'])} s / {f1(connected['baseline']['seconds'])} s"
        ),
        "idle CPU with 0 sockets (5 s), daphne / baseline": (
            f"{idle_empty['precis']:.2f} % / {idle_empty['baseline']:.2f} %"
        ),
        f"idle CPU with {n} sockets ({config['idle_s']:g} s), daphne / baseline": (
            f"{idle['precis']:.2f} % / {idle['baseline']:.2f} %"
        ),
        f"idle CPU with {n} sockets over {recheck_s:g} s (one recheck period), daphne / baseline": (
            f"{idle_period['precis']:.2f} % / {idle_period['baseline']:.2f} %"
        ),
        "RSS before → after connecting, daphne": (
            f"{rss_before['precis'] / 2**20:.1f} → {rss_after['precis'] / 2**20:.1f} MiB"
        ),
        "RSS before → after connecting, baseline": (
            f"{rss_before['baseline'] / 2**20:.1f} → {rss_after['baseline'] / 2**20:.1f} MiB"
        ),
        "memory per socket, daphne / baseline": f"{kib['precis']:.1f} KiB / {kib['baseline']:.1f} KiB",
        "app changes applied for this run": ", ".join(FIXES[f] for f in sorted(fixes)) or "none (the app as it is)",
        "RLIMIT_NOFILE (this process)": f"{nofile[0]}",
        "phases": ", ".join(f"{k} {v:.0f} s" for k, v in phases.items()),
        "runtime": f"{runtime:.0f} s",
    }
    notes = [
        "Both servers share 2 noisy cores with PostgreSQL, Redis and the client processes; absolute "
        "latencies include the clients' own scheduling, which hits both servers alike.",
        "The Precis latency starts before `send_now`, which first stores the event (on PostgreSQL one "
        "statement: UPDATE of the org's event_seq, taking its row lock, and INSERT of the event) and then "
        "calls `group_send` through `realtime.sender.run`. The benchmark process stands in for a Celery "
        "worker and publishes as one does: `realtime.sender.use_background_loop()` (config/celery.py at "
        "worker start), so every send runs on one long-lived event loop whose channels-redis connection "
        "pool is kept; the details time the parts apart, with the old `async_to_sync` send (a new loop and "
        "Redis connection per event) for comparison.",
        "The app includes the blocking-pool channel layer (realtime/layers.py), the consumer's dispatch "
        "without a thread hop per event and gc.freeze() after start-up (config/asgi.py). The layer's "
        "receive: one reader task per daphne process pops the process's messages (one per event: "
        "channels-redis sends a group message once per process) and puts it in each local socket's "
        "buffer; a socket's receive waits on its buffer. channels-redis' own receive made every waiting "
        "socket race for a lock with two new tasks per message (about 30 % of daphne's CPU in fan-out); "
        "with it the full-scale ratio was 6.5-8.0x over three runs, with the reader 2.9-4.3x over five.",
        "The consumer also replaces channels' `await_many_dispatch` (a new task and an `asyncio.wait` per "
        "message) with one pump per message source feeding a one-slot inbox (realtime/consumers.py "
        "`_dispatch_in_order`): py-spy busy samples of daphne over the full-scale rounds fell from 646 to "
        "314, and the ratio from 3.36-3.49x to 2.2-3.1x over three runs.",
        "Where daphne's time goes now (py-spy during the full-scale rounds, share of busy samples): the "
        "dispatch loop and routing about 17 %, our consumer's handler 16 % (json.dumps 2 %), daphne/autobahn "
        "frame sending 15 %, Twisted socket writes 14 %, the layer's buffer get 7 % and Redis pop 3 %. "
        "The bare server writes each frame from one coroutine of the `websockets` library; per socket and "
        "event, Precis goes through Channels' consumer, daphne's reply path and autobahn. Rounds vary a lot "
        "on this shared 2-core machine (see the per-round ratios).",
        "`--with-fixes gc-threshold` (not saved) measures a change in this harness "
        f"({'; '.join(FIXES.values())}); `--profile DIR` records py-spy profiles of daphne and the publisher.",
    ]
    crashes = daphne_errors(log_dir / "daphne.log")
    details["consumer crashes in the daphne log"] = (
        "; ".join(f"{count} × {message}" for message, count in crashes.most_common(5)) or "none"
    )
    for key in ("phases", "runtime"):  # last
        details[key] = details.pop(key)
    if after_idle["closed"] or crashes:
        notes.append(
            f"{after_idle['closed']} Precis sockets were closed by the server during the run (close codes "
            f"{', '.join(after_idle['close_codes']) or '–'}); daphne logged {sum(crashes.values())} consumer "
            "crashes (see details). A missing delivery is an event a socket did not get."
        )
    if any("Timeout reading from" in message for message in crashes):
        notes.append(
            "redis.exceptions.TimeoutError in receive(): redis-py 8 gives connections a 5 s socket_timeout by "
            "default and channels-redis blocks 5 s in BZPOPMIN when nothing arrives, so the consumer holding the "
            "layer's receive lock dies about every 5 s of quiet (django/channels_redis#422); the channel layer "
            "needs a socket_timeout above 5 s."
        )
    if crashes:
        print(f"[websocket] daphne log kept: {log_dir / 'daphne.log'}", file=sys.stderr)
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    for target in last:
        if last[target]["samples"]:
            notes.append(f"{target}: unexpected messages, e.g. {last[target]['samples']}")
    result = {
        "title": "WebSocket fan-out",
        "method": (
            f"One daphne process (`daphne --access-log /dev/null config.asgi:application`, the app as it is: the "
            f"channel layer `realtime.layers.PrecisRedisChannelLayer` on Redis, no thread hop per event in "
            f"`EventsConsumer.dispatch`, `gc.freeze()` after start-up; defaults otherwise) and one bare `websockets` "
            f"broadcast server (bench/_ws_baseline.py: a set of sockets per org, `websockets.broadcast` on a "
            f"trigger) each hold {n} sockets over {ORGS} organizations, opened "
            f"from {CLIENTS} asyncio client processes (`websockets`, no compression, no client pings). Each Precis "
            f"socket authenticates with its own user's access token (`bearer` subprotocol). A round publishes one "
            f"`document.created` per org — on Precis with `realtime.events.send_now([build_event(...)])` from the "
            f"benchmark process, which publishes as a Celery worker does (`realtime.sender.use_background_loop()` "
            f"first: stored in PostgreSQL in one statement, then `group_send` on one long-lived event loop "
            f"through `realtime.sender`), on the baseline with a trigger carrying the "
            f"same envelope — and every socket's latency is its arrival time minus the publish call's start "
            f"(`time.monotonic()`, one clock for all processes). {config['rounds']} rounds, alternating which server "
            f"goes first; the figure is the median over rounds of each server's p99 over all sockets. After a "
            f"warm-up (one socket per org, 3 events) the RSS of each server is read before and 3 s after "
            f"connecting; idle CPU is the server process's utime+stime from /proc over {config['idle_s']:g} s "
            f"with every socket open and quiet, and again over one full `REALTIME_RECHECK_S` period "
            f"({recheck_s:g} s, each socket re-reads its user once) after the rounds."
        ),
        "data": (
            f"{ORGS} organizations `bench-ws-00…09`, {per_org} active users each (bulk-created once, reused), one "
            f"socket per user; an event payload of the size of a real document.created (~0.6 KB of JSON)."
        ),
        "figures": figures,
        "details": details,
        "notes": " ".join(notes),
    }
    if not fixes and not profile_dir:
        save_result("websocket", scale, result)
    return result


def main() -> None:
    argv = sys.argv[1:]
    options = {"--with-fixes": "", "--profile": None}  # --with-fixes gc-threshold; --profile DIR
    for option in options:
        if option in argv:
            at = argv.index(option)
            options[option] = argv[at + 1]
            del argv[at : at + 2]
    fixes = frozenset(f for f in options["--with-fixes"].split(",") if f)
    result = run(parse_scale(argv), fixes=fixes, profile_dir=options["--profile"])
    print_result(result)


if __name__ == "__main__":
    main()
