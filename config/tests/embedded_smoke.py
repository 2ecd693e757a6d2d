"""Run by test_embedded_mode.py in a subprocess with the embedded settings
(SQLite, no Redis): the main API flows must work there too."""

import io
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django.setup()

from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.core.management import call_command  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from config.tests.process_fixtures import wait_until  # noqa: E402
from documents.tests import files  # noqa: E402


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}")
        sys.exit(1)


def main() -> None:
    from django.conf import settings

    check(settings.EMBEDDED and "sqlite" in settings.DATABASES["default"]["ENGINE"], "embedded SQLite settings")
    call_command("migrate", verbosity=0, stdout=io.StringIO())
    call_command("ensure_demo", stdout=io.StringIO())
    from jobs import embedded

    embedded.start()  # as `python -m config.serve` does: this process runs the jobs

    client = APIClient(HTTP_HOST="127.0.0.1")
    reg = client.post(
        "/api/v1/auth/register/",
        {"email": "solo@example.test", "password": "a-long-passphrase-9", "organization_name": "Solo"},
        format="json",
    )
    check(reg.status_code == 201, f"register {reg.status_code} {reg.content[:200]}")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {reg.json()['access']}")

    made = client.post("/api/v1/documents/", {"title": "Typed", "content": "Apples and Pears"}, format="json")
    check(made.status_code == 201, f"create {made.status_code} {made.content[:200]}")
    replay = client.post(
        "/api/v1/documents/", {"title": "Retry", "content": "Once only"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    again = client.post(
        "/api/v1/documents/", {"title": "Retry", "content": "Once only"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    check(replay.json()["id"] == again.json()["id"], "idempotent replay")
    uploads = {}
    for name, data, words in [
        ("r.pdf", files.pdf_bytes(["Pdf words"]), "Pdf words"),
        ("m.docx", files.docx_bytes(["Docx words"]), "Docx words"),
        ("p.html", files.HTML_PAGE.encode(), "Revenue grew"),
    ]:
        up = client.post("/api/v1/documents/", {"file": SimpleUploadedFile(name, data)}, format="multipart")
        check(up.status_code == 202, f"upload {name} {up.status_code} {up.content[:200]}")
        uploads[up.json()["document"]["id"]] = words
    for document_id, words in uploads.items():  # extracted in this process's ingest pool
        document = wait_until(
            lambda: (d := client.get(f"/api/v1/documents/{document_id}/").json())["status"] != "processing" and d,
            timeout=60,
        )
        check(document["status"] == "ready" and words in document["content"], f"ingested {document}")
    found = client.get("/api/v1/documents/", {"search": "APPLES"}).json()["results"]
    check([d["id"] for d in found] == [made.json()["id"]], "contains search on SQLite")
    listed = client.get("/api/v1/documents/", {"page_size": 2}).json()
    check(len(listed["results"]) == 2 and listed["next"], "cursor pagination")
    doc_id = made.json()["id"]
    # summarize in-process (thread pool after commit) with the local provider
    article = client.post(
        "/api/v1/documents/",
        {
            "title": "Library budget",
            "content": "The council approved a new library budget. The budget funds longer library hours. "
            "It rained on Monday. Library visits keep rising, and the budget follows them.",
        },
        format="json",
    ).json()
    job = client.post(f"/api/v1/documents/{article['id']}/summarize/", {}, format="json")
    check(job.status_code == 202, f"summarize {job.status_code} {job.content[:300]}")
    deadline = time.monotonic() + 60
    while True:
        state = client.get(f"/api/v1/jobs/{job.json()['id']}/").json()
        if state["status"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    check(state["status"] == "succeeded", f"embedded job {state}")
    summary = client.get(f"/api/v1/summaries/{state['summary']}/").json()
    from realtime.models import StoredEvent

    stored = list(StoredEvent.unscoped_objects.order_by("seq").values_list("seq", "type"))
    check([seq for seq, _ in stored] == list(range(1, len(stored) + 1)), f"event numbers {stored}")
    types = [kind for _, kind in stored]
    check(types[-2:] == ["job.succeeded", "summary.created"], f"closing events stored together {types}")
    check("budget" in summary["content"].lower() and "rained" not in summary["content"], f"summary {summary}")
    patched = client.patch(f"/api/v1/documents/{doc_id}/", {"content": "Plums"}, format="json")
    check(patched.json()["content"] == "Plums", "update")
    check(client.delete(f"/api/v1/documents/{doc_id}/").status_code == 204, "delete")
    check(client.get("/api/v1/org/").json()["name"] == "Solo", "org")
    check(client.get("/health/ready").status_code == 200, "ready")
    print("EMBEDDED OK")


if __name__ == "__main__":
    main()
