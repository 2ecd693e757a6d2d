"""The deployment files stay coherent with the code (docker itself does not run in CI).

`docker compose config -q` validates the compose file on a machine with Docker;
this test guards what the suite can check without it.
"""

from pathlib import Path

import yaml
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def test_compose_defines_the_stack_with_healthchecks_and_volumes():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "io", "beat"} <= set(services)
    for name in ("postgres", "redis", "web", "worker", "io", "beat"):
        assert "healthcheck" in services[name], name
    assert {"pgdata", "redisdata", "media"} <= set(compose["volumes"])
    assert services["worker"]["command"][:4] == ["celery", "-A", "config", "worker"]
    # every job queue has a consumer, the LLM one with threads
    cpu, io = services["worker"]["command"], services["io"]["command"]
    assert cpu[cpu.index("-Q") + 1] == "default,summaries,integrations" and "--pool" not in cpu
    assert io[io.index("-Q") + 1] == "llm,ingest" and io[io.index("--pool") + 1] == "threads"
    assert services["io"]["environment"]["LLM_CONCURRENCY"] == "${LLM_CONCURRENCY:-32}"
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]
    assert services["web"]["command"][:3] == ["python", "-m", "config.serve"]
    assert "config.asgi:application" in services["web"]["command"]
    env = services["web"]["environment"]
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"} <= set(env)


def test_dockerfile_runs_as_non_root_and_serves_asgi():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER precis" in dockerfile
    assert "collectstatic" in dockerfile
    assert "config.asgi:application" in dockerfile


def test_procfile_runs_web_workers_and_beat():
    procfile = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert set(procfile) == {"web", "worker", "io", "beat"}
    assert "celery -A config worker -Q default,summaries,integrations" in procfile["worker"]
    assert "celery -A config worker -Q llm,ingest --pool threads" in procfile["io"]
    assert "celery -A config beat" in procfile["beat"]
