"""The embedded mode (`make run`: SQLite, no Redis) runs the main flows end to end."""

import os
import subprocess
import sys

from django.conf import settings


def test_embedded_mode_flows(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "SECRET_KEY"}}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DEBUG": "true",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'embedded.sqlite3'}",
            "MEDIA_ROOT": str(tmp_path / "media"),
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "config.tests.embedded_smoke"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "EMBEDDED OK" in result.stdout


def test_embedded_server_runs_llm_calls_side_by_side_and_resumes_after_a_crash(tmp_path, fake_llm):
    """`make run`'s process: several calls in flight, and a batch cut off by a kill -9 finishes
    after the next start (its jobs live in SQLite, not in the process)."""
    import signal

    import requests

    from config.tests.process_fixtures import free_port, wait_until
    from summaries.tests.fake_llm import Reply

    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "SECRET_KEY", "DATABASE_URL"}}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DEBUG": "true",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'embedded.sqlite3'}",
            "MEDIA_ROOT": str(tmp_path / "media"),
            "LLM_BASE_URL": fake_llm.url,
            "LLM_API_KEY": "test-key",
            "LLM_TIMEOUT_S": "20",
            "LLM_RATE_LIMIT_RPM": "6000",  # a known limit: no single first call to learn it
        }
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=settings.BASE_DIR, env=env, check=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def serve() -> subprocess.Popen:
        command = [sys.executable, "-m", "config.serve", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
        log = open(tmp_path / "serve.log", "ab")  # noqa: SIM115 - closed by the child's exit
        server = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)

        def up():
            try:
                return requests.get(f"{base}/health/live", timeout=1).ok
            except requests.RequestException:
                return False

        wait_until(up, timeout=60, interval=0.1)
        return server

    server = serve()
    try:
        registered = requests.post(
            f"{base}/api/v1/auth/register/",
            json={"email": "solo@example.test", "password": "a-long-passphrase-9", "organization_name": "Solo"},
            timeout=10,
        ).json()
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {registered['access']}"
        ids = [
            api.post(f"{base}/api/v1/documents/", json={"title": f"D{i}", "content": f"Doc {i}."}, timeout=10).json()[
                "id"
            ]
            for i in range(6)
        ]
        fake_llm.then(*[Reply(hang=True)] * 6)
        batch = api.post(
            f"{base}/api/v1/documents/summarize/", json={"document_ids": ids, "provider": "openai"}, timeout=10
        ).json()
        assert fake_llm.wait_for_requests(6) and fake_llm.peak_in_flight == 6  # all six at once
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        fake_llm.release.set()  # the calls of the dead process end

        server = serve()  # the next start picks the batch up where it was
        done = wait_until(
            lambda: (
                (b := api.get(f"{base}/api/v1/batches/{batch['id']}/", timeout=10).json())["status"] == "completed"
                and b
            ),
            timeout=60,
            interval=0.2,
        )
        assert done["counts"]["succeeded"] == 6
        attempts = {api.get(f"{base}/api/v1/jobs/{job_id}/", timeout=10).json()["attempts"] for job_id in done["jobs"]}
        assert attempts == {2}  # requeued after the crash, run once more
        assert len(fake_llm.requests) == 12
    finally:
        server.terminate()
        server.wait(timeout=30)
