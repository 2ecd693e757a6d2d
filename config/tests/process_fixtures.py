"""Real processes for end-to-end tests: the loopback LLM, a Celery worker, daphne servers.

Loaded for the whole suite from the root conftest (`pytest_plugins`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
import redis
from django.conf import settings

from summaries.tests.fake_llm import FakeLLM


@pytest.fixture(scope="session")
def fake_llm_server():
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture
def fake_llm(fake_llm_server, settings):
    fake_llm_server.reset()
    settings.LLM_BASE_URL = fake_llm_server.url
    settings.LLM_API_KEY = "test-key"
    yield fake_llm_server
    fake_llm_server.release.set()


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.05):
    """Wait on a condition with a deadline (the worker is another process)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


class Worker:
    """`celery -A config worker` as a real child process against the test database.

    By default one solo process consuming every queue; `pool`/`concurrency`/`queues` make
    it what the Procfile runs (e.g. the `llm` worker: threads), `extra_env` tunes it.
    """

    def __init__(
        self,
        llm_url: str,
        providers_url: str = "",
        *,
        name: str = "test",
        pool: str = "solo",
        concurrency: int | None = None,
        queues: str | None = None,
        extra_env: dict[str, str] | None = None,
    ):
        self.llm_url = llm_url
        self.providers_url = providers_url
        self.name = name
        self.pool = pool
        self.concurrency = concurrency
        self.queues = queues
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None
        self.log_path = settings.VAR_DIR / f"{name}-worker.log"

    def env(self) -> dict[str, str]:
        db = settings.DATABASES["default"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
                "REDIS_URL": settings.REDIS_URL,
                "LLM_BASE_URL": self.llm_url,
                "LLM_API_KEY": "test-key",
                "LLM_TIMEOUT_S": "5",
                "LLM_MAX_RETRIES": "1",
                "LLM_CONTEXT_TOKENS": "1000",
                "JOB_LEASE_S": "3",
                "JOB_HEARTBEAT_S": "0.5",
                "JOB_MAX_ATTEMPTS": "2",
                "OUTBOUND_ALLOWED_HOSTS": "127.0.0.1",
            }
        )
        env.update(self.extra_env)
        if self.providers_url:
            from integrations.tests.fake_providers import CLIENT_ID, CLIENT_SECRET

            base = self.providers_url
            for prefix, api in (("GOOGLE_DRIVE", base), ("NOTION", base), ("SLACK", f"{base}/slack")):
                env.update(
                    {
                        f"{prefix}_CLIENT_ID": CLIENT_ID,
                        f"{prefix}_CLIENT_SECRET": CLIENT_SECRET,
                        f"{prefix}_AUTHORIZE_URL": f"{base}/oauth/authorize",
                        f"{prefix}_TOKEN_URL": f"{base}/oauth/token",
                        f"{prefix}_API_BASE_URL": api,
                        f"{prefix}_REVOKE_URL": f"{base}/oauth/revoke",
                    }
                )
        return env

    def start(self) -> Worker:
        if self.process and self.process.poll() is None:
            return self
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed by the child's exit
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", self.pool, "--loglevel", "INFO"]
        command += [
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"{self.name}-{os.getpid()}@%h",
        ]
        if self.concurrency:
            command += ["--concurrency", str(self.concurrency)]
        if self.queues:
            command += ["-Q", self.queues]
        self.process = subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: self._ready(offset), timeout=60, interval=0.1)
        return self

    def _ready(self, offset: int) -> bool:
        """Celery logs '<name> ready.' once it consumes its queues."""
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited early; see {self.log_path}")
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return b" ready." in log.read()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


class OwnRedis:
    """A redis-server of the test's own on a spare port, to stop and start at will (never the
    shared one). Starts empty, keeps nothing on disk."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> OwnRedis:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, timeout=10)
        return self

    def _answers(self) -> bool:
        try:
            return redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def redis_cache_settings(url: str) -> dict:
    """CACHES for the test settings' cache on another Redis (an OwnRedis)."""
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "precis",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Daphne:
    """`daphne config.asgi:application` on a loopback port, against the test database."""

    def __init__(self, worker_env: dict[str, str], name: str):
        # PGAPPNAME labels this server's PostgreSQL connections (pg_stat_activity.application_name).
        self.application_name = f"precis-test-daphne-{name}"
        self.env = {**worker_env, "PGAPPNAME": self.application_name}
        self.port = free_port()
        self.log_path = settings.VAR_DIR / f"test-daphne-{name}.log"
        self.process: subprocess.Popen | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> Daphne:
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed by the child's exit
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "config.serve",
                "--access-log",
                "/dev/null",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "config.asgi:application",
            ],
            cwd=settings.BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        import requests

        def up() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"daphne exited; see {self.log_path}")
            try:
                return requests.get(f"{self.http}/health/live", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(up, timeout=60, interval=0.1)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def no_session_worker(celery_worker):
    """The suite's solo worker would take the module's jobs with settings of its own: off meanwhile."""
    celery_worker.stop()
    yield
    celery_worker.start()


@pytest.fixture(scope="session")
def daphne_pair(celery_worker):
    servers = [Daphne(celery_worker.env(), name).start() for name in ("a", "b")]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def fake_providers_server():
    from integrations.tests.fake_providers import FakeProviders

    server = FakeProviders()
    yield server
    server.stop()


def provider_settings(base: str) -> dict[str, dict[str, str]]:
    """INTEGRATION_PROVIDERS pointing at the loopback fakes."""
    from integrations.tests.fake_providers import CLIENT_ID, CLIENT_SECRET

    common = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "authorize_url": f"{base}/oauth/authorize",
        "token_url": f"{base}/oauth/token",
        "revoke_url": f"{base}/oauth/revoke",
    }
    return {
        "google_drive": {**common, "api_base_url": base},
        "notion": {**common, "api_base_url": base, "revoke_url": ""},
        "slack": {**common, "api_base_url": f"{base}/slack"},
    }


@pytest.fixture
def fake_providers(fake_providers_server, settings):
    fake_providers_server.reset()
    settings.INTEGRATION_PROVIDERS = provider_settings(fake_providers_server.url)
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    return fake_providers_server


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, fake_llm_server, fake_providers_server):
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    settings.VAR_DIR.mkdir(exist_ok=True)
    worker = Worker(fake_llm_server.url, fake_providers_server.url)
    if worker.log_path.exists():
        worker.log_path.unlink()
    worker.start()
    yield worker
    worker.stop()
