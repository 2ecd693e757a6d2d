"""What an audit entry costs a request: the document list and summarize paths, as they are and
with one audit entry written in each request's transaction, alternating in rounds.

The list and summarize requests are not audited actions, so as they are they pay only the
request binding the audit log reads (config.middleware.current_request). The second variant
writes what an audited action writes — one `organizations.audit.record` with actor, address,
user agent, request id, target and diff — inside the request's transaction, so the ratio is
the cost of an audit write on those paths. In-process through Django's full stack (the
middleware, DRF, ATOMIC_REQUESTS, PostgreSQL; summarize also runs its scheduling round
against Redis), no HTTP server: the figure is the audit write against the request's own
work, not against network noise.

    .venv/bin/python -m bench.audit_cost --scale small|full
"""

from __future__ import annotations

import time

from bench.common import figure, median, parse_scale, save_result, setup_django

NAME = "audit_cost"
DB = "precis_bench_audit"
REDIS_DB = 10
SCALES = {"small": {"rounds": 6, "per_round": 40}, "full": {"rounds": 10, "per_round": 80}}
DOCUMENTS = 200


def main(argv=None) -> dict:
    scale = parse_scale(argv)
    setup_django(DB, REDIS_DB, ALLOWED_HOSTS="testserver,localhost")
    from django.db import connection
    from django_scopes import scopes_disabled
    from rest_framework.test import APIClient

    from accounts.tokens import token_pair_for
    from conftest import make_tenant
    from documents.models import Document
    from jobs.models import Job
    from organizations import audit
    from summaries import services as summary_services

    with scopes_disabled():
        Job.unscoped_objects.all().delete()
        Document.unscoped_objects.filter(title__startswith="audit-bench").delete()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM organizations_auditentry")
    tenant = make_tenant(f"Audit bench {int(time.time())}")
    Document.unscoped_objects.bulk_create(
        Document(
            org=tenant.org,
            title=f"audit-bench {n}",
            content="The board met and approved the budget. " * 20,
            char_count=800,
            sha256=f"{n:064x}",
            created_by=tenant.admin,
        )
        for n in range(DOCUMENTS)
    )
    target = Document.unscoped_objects.filter(org=tenant.org).first()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(tenant.admin)['access']}")

    original_request = summary_services.summary_request

    def audited_request(**kwargs):
        job = original_request(**kwargs)
        audit.record("document.deleted", org=kwargs["org"], target=kwargs["document"], changes={"bench": [0, 1]})
        return job

    def audited_list(view):
        def wrapped(request, *args, **kwargs):
            response = view(request, *args, **kwargs)
            audit.record("org.updated", org=tenant.org, target=tenant.org, changes={"bench": [0, 1]})
            return response

        return wrapped

    from documents.views import DocumentViewSet

    plain_list = DocumentViewSet.list

    def one(path: str, audited: bool) -> float:
        summary_services.summary_request = audited_request if audited else original_request
        DocumentViewSet.list = audited_list(plain_list) if audited else plain_list
        started = time.perf_counter()
        if path == "list":
            response = client.get("/api/v1/documents/", {"page_size": 50})
        else:
            response = client.post(f"/api/v1/documents/{target.pk}/summarize/", {"provider": "local"}, format="json")
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code in (200, 202), response.content[:300]
        return elapsed

    settings_ = SCALES[scale]
    for path in ("list", "summarize"):  # warm up both variants
        for audited in (False, True) * 5:
            one(path, audited)
    samples = {(path, audited): [] for path in ("list", "summarize") for audited in (False, True)}
    for _round in range(settings_["rounds"]):
        with scopes_disabled():  # the queued jobs of the last round go: every round starts alike
            Job.unscoped_objects.filter(org=tenant.org).delete()
        for path in ("list", "summarize"):
            times = {False: [], True: []}
            for number in range(settings_["per_round"]):  # the variants alternate request by request
                for audited in (False, True) if number % 2 == 0 else (True, False):
                    times[audited].append(one(path, audited))
            for audited in (False, True):
                samples[(path, audited)].append(median(times[audited]))
    summary_services.summary_request = original_request
    DocumentViewSet.list = plain_list

    data, figures = {}, []
    for path in ("list", "summarize"):
        plain, audited = median(samples[(path, False)]), median(samples[(path, True)])
        ratio = audited / plain
        data[path] = {"plain_ms": round(plain, 3), "audited_ms": round(audited, 3), "ratio": round(ratio, 3)}
    ratio = data["summarize"]["ratio"]
    figures.append(
        figure("summarize: with an audit entry / without (time per request)", ratio, "≤ 1.10", ratio <= 1.10, "×")
    )
    # The list is a read: it writes no audit entry, and an entry would also make its commit
    # flush the WAL, which a read-only transaction does not.
    figures.append(
        figure(
            "list: with an audit entry / without (the list writes none as built)",
            data["list"]["ratio"],
            "reported",
            True,
            "×",
        )
    )
    result = {
        "title": "Audit writes on the list and summarize paths",
        "method": __doc__.strip().splitlines()[0],
        "data": data,
        "figures": figures,
        "rounds": {
            f"{path} {'audited' if audited else 'plain'}": [round(v, 3) for v in values]
            for (path, audited), values in samples.items()
        },
        "notes": (
            "Median over rounds of each round's median request time; the variants alternate request by "
            "request and each round starts without the queued jobs of the last. As built, neither path writes an "
            "audit entry (they are not security actions): what they pay is the request binding the log reads "
            "(a context variable). An audited action (a delete, a role change) pays one INSERT in its own "
            "transaction, which the summarize figure measures; on a read such as the list the entry also makes "
            "the commit flush the WAL, hence its larger ratio."
        ),
    }
    path = save_result(NAME, scale, result)
    print(result["data"], "→", path)
    return result


if __name__ == "__main__":
    main()
