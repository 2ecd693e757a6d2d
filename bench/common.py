"""Shared pieces of the benchmarks: environment, measurement helpers, result files.

Every benchmark is a module `bench/<name>.py` with `run(scale: str) -> dict`
that writes `bench/results/<name>.json` through `save_result`; `bench/report.py`
renders all result files into docs/benchmarks.md. Figures are ratios against a
baseline measured in the same run, interleaved in rounds, reported as medians;
absolute numbers are reported too, never gated.

Each benchmark uses its own PostgreSQL database and Redis database (BENCH_DB,
BENCH_REDIS_DB) so that benchmarks, tests and development never collide.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SCALES = ("small", "full")


def setup_django(db_name: str, redis_db: int, **extra_env: str) -> None:
    """Point Django at this benchmark's own database and Redis, migrate, and set up."""
    os.environ["DATABASE_URL"] = (
        os.environ.get("BENCH_DATABASE_URL_BASE", "postgres://postgres@127.0.0.1:5432/") + db_name
    )
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:6379/{redis_db}"
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production-0123456789-abcdefghij")
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "cHJlY2lzLXRlc3Qta2V5LW5ld2VzdC0wMTIzNDU2Nzg=")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.update(extra_env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    create_database(db_name)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def create_database(name: str) -> None:
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def bench_env(db_name: str, redis_db: int, **extra: str) -> dict[str, str]:
    """Environment for child processes (daphne, celery) of a benchmark."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_name}",
            "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
            "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-secret-key-not-for-production-0123456789-abcdefghij"),
            "FIELD_ENCRYPTION_KEYS": os.environ.get(
                "FIELD_ENCRYPTION_KEYS", "cHJlY2lzLXRlc3Qta2V5LW5ld2VzdC0wMTIzNDU2Nzg="
            ),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    return env


def median(values) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def percentile(values, q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[index]


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def machine() -> dict[str, str]:
    def run(*cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "unknown"

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory_gib": f"{mem_kb / 1024 / 1024:.1f}",
        "python": platform.python_version(),
        "postgresql": run("psql", "--version"),
        "redis": run("redis-server", "--version").split(" sha=")[0],
        "commit": run("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"),
    }


def save_result(name: str, scale: str, result: dict) -> Path:
    """result: {"title", "method", "data", "figures": [{"name", "value", "target", "met", "unit"}], "notes"}"""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.{scale}.json"
    payload = {
        "name": name,
        "scale": scale,
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        **result,
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def figure(name: str, value: float, target: str, met: bool, unit: str = "") -> dict:
    return {
        "name": name,
        "value": round(value, 4) if isinstance(value, float) else value,
        "target": target,
        "met": bool(met),
        "unit": unit,
    }


def parse_scale(argv: list[str] | None = None) -> str:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", choices=SCALES, default="small")
    return parser.parse_args(argv if argv is not None else sys.argv[1:]).scale


def free_port() -> int:
    """A free TCP port on loopback for a server this benchmark starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def print_result(result: dict) -> None:
    """A benchmark's figures (met or MISSED), details and notes, for the terminal."""
    for fig in result["figures"]:
        verdict = "met" if fig["met"] else "MISSED"
        print(f"{fig['name']}: {fig['value']} {fig['unit']} (target {fig['target']}, {verdict})")
    for key, value in result.get("details", {}).items():
        print(f"  {key}: {value}")
    if result.get("notes"):
        print(f"notes: {result['notes']}")
