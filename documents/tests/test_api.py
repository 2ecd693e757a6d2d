"""Document API end to end on PostgreSQL: CRUD, uploads, refusals, idempotency, search, paging."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conftest import assert_error_shape
from documents.models import Document
from documents.tests.files import stored_files

pytestmark = pytest.mark.django_db

URL = "/api/v1/documents/"


def rows() -> int:
    return Document.unscoped_objects.count()


def upload(client, data: bytes, name: str, key: str | None = None, **fields):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(URL, {"file": SimpleUploadedFile(name, data), **fields}, format="multipart", **headers)


def create(client, **body):
    payload = {"title": "Doc", "content": "Some content"}
    payload.update(body)
    return client.post(URL, payload, format="json")


class TestCreateJSON:
    def test_create(self, tenant):
        response = create(tenant.client(tenant.member), title="Plan", content="Ship it.", metadata={"k": [1, 2]})
        assert response.status_code == 201, response.content
        body = response.json()
        document = Document.unscoped_objects.get(pk=body["id"])
        assert document.org == tenant.org and document.created_by == tenant.member
        assert body["content"] == "Ship it." and body["char_count"] == 8
        assert body["source"] == "manual" and body["metadata"] == {"k": [1, 2]}
        assert body["summaries"] == [] and body["summary_count"] == 0 and body["latest_summary"] is None
        assert body["created_by"] == str(tenant.member.id)
        assert len(body["sha256"]) == 64

    def test_org_and_created_by_never_from_payload(self, tenant, other_tenant):
        response = create(tenant.client(), org=str(other_tenant.org.id))
        assert_error_shape(response, 400, "unknown_field", "org")
        response = create(tenant.client(), created_by=str(other_tenant.admin.id), id="x")
        assert response.status_code == 201  # read-only echo fields are ignored
        document = Document.unscoped_objects.get(pk=response.json()["id"])
        assert document.created_by == tenant.admin and document.org == tenant.org
        assert str(document.id) != "x"

    def test_unicode_round_trip(self, tenant):
        text = "漢字かな 😀 עִבְרִית مرحبا e\u0301 𝔘 \u202eRTL override"
        body = create(tenant.client(), title="🌍 Ünïcode", content=text).json()
        fetched = tenant.client().get(f"{URL}{body['id']}/").json()
        assert fetched["title"] == "🌍 Ünïcode"
        assert fetched["content"] == text.replace("e\u0301", "\u00e9")  # NFC
        assert fetched["char_count"] == len(fetched["content"])

    @pytest.mark.parametrize(
        "body, attr",
        [
            ({"title": ""}, "title"),
            ({"title": "t" * 501}, "title"),
            ({"title": 5}, "title"),
            ({"content": ["a"]}, "content"),
            ({"content": "   "}, "content"),
            ({"source": "Not A Slug!"}, "source"),
            ({"metadata": [1, 2]}, "metadata"),
            ({"metadata": {"big": "x" * 70_000}}, "metadata"),
            ({"source_ref": "r" * 1025}, "source_ref"),
        ],
    )
    def test_bad_input(self, tenant, body, attr):
        assert_error_shape(create(tenant.client(), **body), 400, attr=attr)
        assert rows() == 0

    def test_nul_and_surrogates_refused(self, tenant):
        client = tenant.client()
        for raw in (b'{"title": "t", "content": "a\\u0000b"}', b'{"title": "t", "content": "\\udc80"}'):
            response = client.generic("POST", URL, raw, content_type="application/json")
            assert_error_shape(response, 400, "invalid_characters", "content")
        assert_error_shape(
            client.generic("POST", URL, b'{"title": "t", "content": "\xff"}', content_type="application/json"),
            400,
            "invalid_utf8",
        )
        assert rows() == 0

    def test_content_over_limit_413(self, tenant, settings):
        settings.MAX_DOCUMENT_CHARS = 100
        response = create(tenant.client(), content="x" * 101)
        assert_error_shape(response, 413, "document_too_long")
        assert rows() == 0

    def test_duplicate_source_ref_409(self, tenant):
        assert create(tenant.client(), source="notion", source_ref="page-1").status_code == 201
        assert_error_shape(create(tenant.client(), source="notion", source_ref="page-1"), 409, "duplicate_source_ref")
        assert create(tenant.client(), source="notion", source_ref="page-2").status_code == 201

    def test_anonymous_401(self, anon):
        assert_error_shape(anon.post(URL, {"title": "t", "content": "c"}, format="json"), 401)


class TestIdempotency:
    def test_retry_returns_first_result(self, tenant):
        client = tenant.client()
        first = client.post(URL, {"title": "t", "content": "c"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        second = client.post(URL, {"title": "t", "content": "c"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert second["Idempotent-Replayed"] == "true"
        assert rows() == 1

    def test_upload_retry(self, tenant, media):
        client = tenant.client()
        first = upload(client, b"same bytes", "a.txt", key="u-1")
        second = upload(client, b"same bytes", "a.txt", key="u-1")
        assert first.status_code == second.status_code == 202 and second["Idempotent-Replayed"] == "true"
        assert first.json()["document"]["id"] == second.json()["document"]["id"]
        assert first.json()["job"]["id"] == second.json()["job"]["id"]
        assert rows() == 1 and len(stored_files(media)) == 1

    def test_same_key_different_body_409(self, tenant):
        client = tenant.client()
        client.post(URL, {"title": "t", "content": "c"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
        response = client.post(URL, {"title": "t", "content": "other"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
        assert_error_shape(response, 409, "idempotency_key_reused")
        assert rows() == 1

    def test_keys_are_per_user_and_org(self, tenant, other_tenant):
        body = {"title": "t", "content": "c"}
        tenant.client().post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
        tenant.client(tenant.member).post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
        other_tenant.client().post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
        assert rows() == 3

    def test_failed_request_is_not_remembered(self, tenant):
        client = tenant.client()
        assert (
            client.post(URL, {"title": "", "content": "c"}, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 400
        )
        assert (
            client.post(URL, {"title": "ok", "content": "c"}, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code
            == 201
        )

    @pytest.mark.parametrize("key", ["has space", "x" * 256, "ünï"])
    def test_invalid_key(self, tenant, key):
        response = tenant.client().post(URL, {"title": "t", "content": "c"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert_error_shape(response, 400, "invalid_idempotency_key")


class TestDetailUpdateDelete:
    def test_detail(self, tenant):
        doc_id = create(tenant.client(), content="Full text").json()["id"]
        body = tenant.client(tenant.member).get(f"{URL}{doc_id}/").json()
        assert body["content"] == "Full text" and body["summaries"] == []

    def test_other_org_404_everywhere(self, tenant, other_tenant):
        doc_id = create(tenant.client(), title="Secret", content="Secret plans").json()["id"]
        intruder = other_tenant.client()
        assert_error_shape(intruder.get(f"{URL}{doc_id}/"), 404)
        assert_error_shape(intruder.patch(f"{URL}{doc_id}/", {"title": "pwned"}, format="json"), 404)
        assert_error_shape(intruder.put(f"{URL}{doc_id}/", {"title": "p", "content": "p"}, format="json"), 404)
        assert_error_shape(intruder.delete(f"{URL}{doc_id}/"), 404)
        assert intruder.get(URL).json()["results"] == []
        assert intruder.get(URL, {"search": "secret"}).json()["results"] == []
        assert Document.unscoped_objects.get(pk=doc_id).title == "Secret"

    def test_patch_and_put(self, tenant):
        doc = create(tenant.client(), title="Old", content="old words").json()
        patched = tenant.client().patch(f"{URL}{doc['id']}/", {"title": "New"}, format="json").json()
        assert patched["title"] == "New" and patched["content"] == "old words" and patched["sha256"] == doc["sha256"]
        put = tenant.client().put(f"{URL}{doc['id']}/", {"title": "T", "content": "fresh words"}, format="json")
        assert put.status_code == 200
        body = put.json()
        assert body["content"] == "fresh words" and body["char_count"] == 11 and body["sha256"] != doc["sha256"]
        assert_error_shape(
            tenant.client().put(f"{URL}{doc['id']}/", {"title": "only"}, format="json"), 400, attr="content"
        )

    def test_update_refuses_source_changes_and_unknown_fields(self, tenant):
        doc = create(tenant.client(), source="notion", source_ref="p1").json()
        response = tenant.client().patch(f"{URL}{doc['id']}/", {"source": "manual", "source_ref": "x"}, format="json")
        assert response.status_code == 200  # read-only, ignored
        assert response.json()["source"] == "notion" and response.json()["source_ref"] == "p1"
        assert_error_shape(
            tenant.client().patch(f"{URL}{doc['id']}/", {"org": "x"}, format="json"), 400, "unknown_field"
        )

    def test_update_keeps_search_current(self, tenant):
        doc = create(tenant.client(), title="Notes", content="about apples").json()
        tenant.client().patch(f"{URL}{doc['id']}/", {"content": "about zeppelins"}, format="json")
        assert [r["id"] for r in tenant.client().get(URL, {"search": "zeppelin"}).json()["results"]] == [doc["id"]]
        assert tenant.client().get(URL, {"search": "apples"}).json()["results"] == []

    def test_delete_removes_row_and_file(self, tenant, media, django_capture_on_commit_callbacks):
        doc_id = upload(tenant.client(), b"bye", "a.txt").json()["document"]["id"]
        assert len(stored_files(media)) == 1
        with django_capture_on_commit_callbacks(execute=True):
            assert tenant.client(tenant.member).delete(f"{URL}{doc_id}/").status_code == 204
        assert rows() == 0 and stored_files(media) == []


class TestList:
    def test_rows_match_the_documented_serializer(self, tenant, ingest):
        """The list builds plain rows (document_list_row) instead of a ModelSerializer per row:
        every row must equal what DocumentListOutputSerializer gives for the same document."""
        from django_scopes import scope

        from documents import selectors
        from documents.serializers import DocumentListOutputSerializer

        client = tenant.client()
        create(client, title="Plain", content="zeppelin " * 100, metadata={"a": [1, {"b": None}], "ü": "ß"})
        ingest(upload(client, b"zeppelin in a file", "report.txt"))
        manual = create(client, title="No author", content="zeppelin").json()
        Document.unscoped_objects.filter(pk=manual["id"]).update(created_by=None)
        for query in ({}, {"search": "zeppelin"}, {"ordering": "title"}):
            listed = client.get(URL, query).json()["results"]
            with scope(org=tenant.org.id):
                queryset = selectors.document_list_queryset(
                    Document.objects.all(), search=query.get("search")
                ).order_by(*(["title"] if "ordering" in query else ["-created_at"]))
                expected = {
                    row["id"]: row
                    for row in json.loads(json.dumps(DocumentListOutputSerializer(queryset, many=True).data))
                }
            assert len(listed) == 3 and {row["id"]: row for row in listed} == expected
        assert {row["file_name"] for row in listed} == {"report.txt", None}
        assert {row["created_by"] for row in listed} == {str(tenant.admin.id), None}

    def test_excerpt_not_content(self, tenant):
        create(tenant.client(), content="word " * 200)
        row = tenant.client().get(URL).json()["results"][0]
        assert "content" not in row and len(row["excerpt"]) == 300 and row["summary_count"] == 0

    def test_filters(self, tenant):
        client = tenant.client()
        old = create(client, title="Old", source="notion", source_ref="1").json()
        Document.unscoped_objects.filter(pk=old["id"]).update(created_at=timezone.now() - timedelta(days=10))
        new = create(client, title="New").json()
        ids = lambda **q: [r["id"] for r in client.get(URL, q).json()["results"]]  # noqa: E731
        assert ids(source="notion") == [old["id"]]
        cutoff = (timezone.now() - timedelta(days=1)).isoformat()
        assert ids(created_after=cutoff) == [new["id"]]
        assert ids(created_before=cutoff) == [old["id"]]
        assert ids(ordering="title") == [new["id"], old["id"]]
        assert ids(ordering="-title") == [old["id"], new["id"]]
        assert ids(ordering="created_at") == [old["id"], new["id"]]

    @pytest.mark.parametrize(
        "query, attr",
        [
            ({"ordering": "content"}, "ordering"),
            ({"created_after": "yesterday"}, "created_after"),
            ({"source": "BAD SOURCE"}, "source"),
            ({"search": "x" * 501}, "search"),
            ({"search": "a\x00b"}, "search"),
        ],
    )
    def test_bad_query_params(self, tenant, query, attr):
        assert_error_shape(tenant.client().get(URL, query), 400, attr=attr)

    def test_query_count_constant_in_page_size(self, tenant):
        client = tenant.client()
        Document.unscoped_objects.bulk_create(
            [
                Document(org=tenant.org, title=f"d{i}", content="x" * 500, char_count=500, sha256="0" * 64)
                for i in range(60)
            ]
        )
        counts = []
        for size in (1, 10, 50):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(URL, {"page_size": size})
            assert len(response.json()["results"]) == size
            # the test's own transaction adds SAVEPOINT/RELEASE around the request's atomic block
            counts.append(sum(1 for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))))
        assert counts[0] == counts[1] == counts[2] == 2, counts  # the user+org, then the page

    def test_pagination_stable_under_concurrent_inserts(self, tenant):
        client = tenant.client()
        base = timezone.now() - timedelta(hours=1)
        originals = Document.unscoped_objects.bulk_create(
            [
                Document(
                    org=tenant.org, title=f"d{i}", content="c", sha256="0" * 64, created_at=base + timedelta(seconds=i)
                )
                for i in range(25)
            ]
        )
        page = client.get(URL, {"page_size": 10}).json()
        seen = [r["id"] for r in page["results"]]
        for i in range(5):  # newer documents arrive while the client pages
            create(client, title=f"late {i}")
        while page["next"]:
            page = client.get(page["next"]).json()
            seen += [r["id"] for r in page["results"]]
        assert len(seen) == len(set(seen)) == 25
        assert set(seen) == {str(d.id) for d in originals}


class TestSearch:
    @pytest.fixture
    def corpus(self, tenant):
        client = tenant.client()
        make = lambda title, content: create(client, title=title, content=content).json()["id"]  # noqa: E731
        return {
            "title_hit": make("Running shoes review", "A comparison of footwear."),
            "content_hit": make("Footwear notes", "We went running every morning."),
            "other": make("Cooking", "Recipes for pasta and bread."),
        }

    def test_stemming_and_title_ranks_above_content(self, tenant, corpus):
        results = tenant.client().get(URL, {"search": "run"}).json()["results"]
        assert [r["id"] for r in results] == [corpus["title_hit"], corpus["content_hit"]]

    def test_websearch_syntax(self, tenant, corpus):
        ids = {r["id"] for r in tenant.client().get(URL, {"search": '"went running" -cooking'}).json()["results"]}
        assert ids == {corpus["content_hit"]}
        ids = {r["id"] for r in tenant.client().get(URL, {"search": "pasta or footwear"}).json()["results"]}
        assert ids == set(corpus.values())

    @pytest.mark.parametrize(
        "hostile",
        ["'", '"', "&|!()", "%", "\\", "foo & | bar", "!!!", ":*", "a:b", "<->", "--", "((", "'; DROP TABLE x; --"],
    )
    def test_hostile_input_never_errors(self, tenant, corpus, hostile):
        response = tenant.client().get(URL, {"search": hostile})
        assert response.status_code == 200, response.content
        assert isinstance(response.json()["results"], list)

    def test_common_terms_rank_a_bounded_candidate_set(self, tenant, settings):
        settings.SEARCH_RANK_CANDIDATES = 3
        client = tenant.client()
        for i in range(5):
            create(client, title=f"memo {i}", content="quarterly budget")
        create(client, title="rare", content="zeppelin budget")
        assert len(client.get(URL, {"search": "budget", "page_size": 50}).json()["results"]) == 3
        assert [r["title"] for r in client.get(URL, {"search": "zeppelin"}).json()["results"]] == ["rare"]

    def test_search_paginates_by_rank(self, tenant):
        client = tenant.client()
        for i in range(12):
            create(client, title=f"doc {i}", content="budget " * (i + 1))
        seen, url = [], f"{URL}?search=budget&page_size=5"
        while url:
            body = client.get(url).json()
            seen += [r["id"] for r in body["results"]]
            url = body["next"]
        assert len(seen) == len(set(seen)) == 12


def test_schema_documents_uploads(anon):
    schema = anon.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    post = schema["paths"]["/api/v1/documents/"]["post"]
    assert {"application/json", "multipart/form-data"} <= set(post["requestBody"]["content"])
    assert {"201", "413", "415"} <= set(post["responses"])


def test_metadata_round_trip_is_json(tenant):
    meta = {"nested": {"list": [1, "two", None, True]}, "emoji": "🎉"}
    body = create(tenant.client(), metadata=meta).json()
    assert json.loads(json.dumps(body["metadata"])) == meta
