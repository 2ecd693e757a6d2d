"""deploy/prometheus/alerts.yml: valid, unit-tested with promtool, documented, and only about
series that /metrics really exposes (so the rules cannot drift from config/metrics.py).

Needs /usr/bin/promtool (Debian package `prometheus`): run config/tests/system_setup.sh once.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings

RULES_DIR = Path(settings.BASE_DIR) / "deploy" / "prometheus"
RULES = RULES_DIR / "alerts.yml"
RULE_TESTS = RULES_DIR / "alerts_test.yml"
SELECTOR = re.compile(r"\b(precis_[a-z0-9_]+)\s*(?:\{([^}]*)\})?")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')
RECORDED = re.compile(r"\b(precis:[a-z0-9_:]+)\s*(?:\{([^}]*)\})?")


def promtool(*args: str) -> str:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: run config/tests/system_setup.sh (as root)"
    result = subprocess.run([tool, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def alert_names() -> list[str]:
    return [rule["alert"] for rule in rules() if "alert" in rule]


def test_rules_are_valid():
    output = promtool("check", "rules", RULES.name)
    assert f"SUCCESS: {len(rules())} rules found" in output, output


def test_rule_unit_tests_pass():
    assert "SUCCESS" in promtool("test", "rules", RULE_TESTS.name)


def test_every_alert_is_tested_firing_and_not_firing():
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    for name in alert_names():
        outcomes = {bool(case["exp_alerts"]) for case in cases if case["alertname"] == name}
        assert outcomes == {True, False}, f"{name}: needs a test case where it fires and one where it does not"


def test_every_alert_is_documented():
    docs = (Path(settings.BASE_DIR) / "docs" / "deployment.md").read_text()
    section = docs.partition("\n## Alerts\n")[2].partition("\n## ")[0]
    assert section, 'docs/deployment.md has no "## Alerts" section'
    missing = [name for name in alert_names() if f"`{name}`" not in section]
    assert not missing, f"not explained in docs/deployment.md, Alerts: {missing}"


def test_recording_rules_used_are_defined():
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    used = {name for rule in rules() for name, _ in RECORDED.findall(rule["expr"])}
    assert used <= recorded, used - recorded


@pytest.mark.django_db
def test_rules_only_use_series_that_metrics_exposes(tenant, client, settings, django_capture_on_commit_callbacks):
    """Scrape /metrics once every kind of data the rules look at exists, then check each
    `precis_*` selector of the rules: the series name, its label names, and the values of
    its `=` matchers. A selector of a recorded series (`precis:…{outcome="…"}`) is checked
    against the series its recording rule reads."""
    from model_bakery import baker
    from prometheus_client.parser import text_string_to_metric_families

    from config.metrics import record_llm_call
    from documents.models import Document
    from integrations.models import Integration
    from integrations.services import integration_mark
    from jobs.services import job_create, job_fail, job_start
    from organizations.tenancy import org_scope
    from summaries.providers.base import LLMRateLimited
    from summaries.services import summarize_job_run, summary_request

    settings.METRICS_TOKEN = "t"
    api = tenant.client()
    document = api.post("/api/v1/documents/", {"title": "T", "content": "One. Two. Three."}, format="json").json()
    with django_capture_on_commit_callbacks(execute=True), org_scope(tenant.org.id):
        job = summary_request(org=tenant.org, user=tenant.admin, document=Document.objects.get(pk=document["id"]))
        summarize_job_run(job_id=job.pk)
        failing = job_create(org=tenant.org, kind="summarize", created_by=None, payload={}, queue="llm")
        failing = job_start(job_id=failing.pk)
        job_fail(job_id=failing.pk, lease_token=failing.lease_token, code="llm_unavailable", detail="down")
    record_llm_call(provider="local", seconds=0.2, error=LLMRateLimited.code)  # what a 429 records
    integration_mark(baker.make(Integration, org=tenant.org, provider="notion"), Integration.Status.NEEDS_REAUTH)

    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode()
    exposed: dict[str, dict[str, set[str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = exposed.setdefault(sample.name, {})
            for label, value in sample.labels.items():
                labels.setdefault(label, set()).add(value)

    recorded_from = {
        rule["record"]: [name for name, _ in SELECTOR.findall(rule["expr"])] for rule in rules() if "record" in rule
    }
    selectors = []  # (the selector as written, a series it reads, its matchers)
    for rule in rules():
        selectors += [(name, name, matchers) for name, matchers in SELECTOR.findall(rule["expr"])]
        for name, matchers in RECORDED.findall(rule["expr"]):
            selectors += [(name, source, matchers) for source in recorded_from.get(name, [])]
    assert {"precis_llm_calls_total", "precis:llm_calls:rate5m"} <= {name for name, _, _ in selectors}
    problems = []
    for name, source, matchers in selectors:
        if source not in exposed:
            problems.append(f"{source} is not exposed")
            continue
        for label, operator, value in MATCHER.findall(matchers):
            if label not in exposed[source]:
                problems.append(f"{name}: {source} has no label {label}")
            elif operator == "=" and value not in exposed[source][label]:
                problems.append(f"{name}: {source}{{{label}={value!r}}} is never exposed")
    assert not problems, problems
