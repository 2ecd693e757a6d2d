"""Citations: exact spans for extractive summaries, paragraph markers read back for LLMs."""

import json
import re

import pytest

from summaries import citations
from summaries.providers import get_provider
from summaries.providers.base import SummarizeOptions
from summaries.providers.local import LocalProvider
from summaries.summarizer import summarize_document
from summaries.tests.fake_llm import Reply
from templates_app.placeholders import RenderContext

DOCUMENT = (
    "Harbour report\n\n"
    "The harbour authority approved the new container terminal on Monday.   It will open in 2027\n"
    "and double the port's capacity.\n\n"
    "Local fishermen fear the dredging will harm the fish stocks in the bay. The authority promised a study.\n\n"
    "The terminal will cost 400 million euros, paid by the operator and the state. Construction starts in May.\n\n"
    "The weather was mild for the time of year."
)


def collapsed(text: str) -> str:
    return " ".join(text.split())


def test_extractive_citations_are_exact_spans():
    page_offsets = [0, DOCUMENT.index("Local fishermen")]
    result = summarize_document(
        provider=LocalProvider(),
        template_body="{{ document.content }}",
        context=RenderContext(document_content=DOCUMENT),
        options=SummarizeOptions(max_words=45, format="bullets"),
        page_offsets=page_offsets,
    )
    assert result.citations and len(result.citations) == result.text.count("\n") + 1
    for cite in result.citations:
        sentence = result.text[cite["start"] : cite["end"]]
        (source,) = cite["sources"]
        assert collapsed(DOCUMENT[source["start"] : source["end"]]) == sentence  # across the wrapped line too
        assert source["page"] == (1 if source["start"] < page_offsets[1] else 2)


def test_markers_become_citations_and_leave_the_text():
    spans = citations.paragraphs(DOCUMENT)
    answer = "The terminal was approved [2]. It costs 400 million euros. [4][99]\n- Fishermen worry [3-4]."
    text, cites = citations.from_markers(answer, spans)
    assert text == "The terminal was approved. It costs 400 million euros.\n- Fishermen worry."
    assert [text[c["start"] : c["end"]] for c in cites] == [
        "The terminal was approved.",
        "It costs 400 million euros.",
        "- Fishermen worry.",
    ]
    assert [[DOCUMENT[s["start"] : s["end"]][:20] for s in c["sources"]] for c in cites] == [
        ["The harbour authorit"],
        ["The terminal will co"],  # [99] points nowhere: dropped
        ["Local fishermen fear", "The terminal will co"],
    ]
    kept, _ = citations.from_markers(answer, spans, keep_markers=True)
    assert kept == "The terminal was approved [2]. It costs 400 million euros [4].\n- Fishermen worry [3][4]."


def test_a_streamed_text_is_shown_without_markers():
    assert citations.without_markers("Approved [2]. It costs 400 million [4][5]. Fishers worry [3") == (
        "Approved. It costs 400 million. Fishers worry"
    )


def test_no_markers_no_citations():
    text, cites = citations.from_markers("A summary without any markers.", citations.paragraphs(DOCUMENT))
    assert (text, cites) == ("A summary without any markers.", [])


def _completion(text: str) -> bytes:
    return json.dumps(
        {"choices": [{"message": {"content": text}}], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}
    ).encode()


@pytest.fixture
def llm(fake_llm, settings):
    settings.LLM_MAX_RETRIES = 0
    return get_provider("openai")


def test_llm_sees_numbered_paragraphs_and_its_markers_map_to_them(llm, fake_llm):
    fake_llm.then(
        Reply(body=_completion("The terminal was approved and costs 400 million euros [2][4]. Fishers worry [3]."))
    )
    result = summarize_document(
        provider=llm,
        template_body="Summarize:\n\n{{ document.content }}",
        context=RenderContext(document_content=DOCUMENT),
        options=SummarizeOptions(max_words=60),
    )
    request = fake_llm.requests[0]
    prompt = request["messages"][-1]["content"]
    assert "[2] The harbour authority approved" in prompt and "[1] Harbour report" in prompt
    assert "numbered like [1]" in request["messages"][0]["content"]  # the model is told how to cite
    assert result.text == "The terminal was approved and costs 400 million euros. Fishers worry."
    cited = [[DOCUMENT[s["start"] : s["end"]] for s in c["sources"]] for c in result.citations]
    assert "approved the new container terminal" in cited[0][0] and "400 million euros" in cited[0][1]
    assert cited[1] == [DOCUMENT[DOCUMENT.index("Local fishermen") : DOCUMENT.index(" study.") + 7]]


def test_map_reduce_numbers_paragraphs_once_across_chunks(llm, fake_llm, settings):
    settings.LLM_CONTEXT_TOKENS = 400
    document = "\n\n".join(f"Paragraph {i} tells the story of harbour number {i} in some detail." for i in range(1, 41))
    llm = get_provider("openai")
    summarize_document(
        provider=llm,
        template_body="{{ document.content }}",
        context=RenderContext(document_content=document),
        options=SummarizeOptions(max_words=40),
    )
    spans = citations.paragraphs(document)
    maps = [r["messages"][-1]["content"] for r in fake_llm.requests[:-1]]
    assert len(maps) > 1
    seen = []
    for prompt in maps:
        for number, body in re.findall(r"\[(\d+)\] (.+)", prompt):
            start, end = spans[int(number) - 1]
            assert document[start:end] == body
            seen.append(int(number))
    assert seen == list(range(1, 41))
    reduce_system = fake_llm.requests[-1]["messages"][0]["content"]
    assert "consecutive parts, in order" in reduce_system and "Keep the paragraph citations" in reduce_system


LONG_TEXT = (
    "The harbour authority approved the new container terminal on Monday after two years of debate. "
    "The terminal will double the port's capacity and create about 800 jobs in the region. "
    "Local fishermen fear that the dredging will harm the fish stocks in the bay. "
    "The authority promised an independent study of the bay before any dredging starts. "
    "The terminal will cost 400 million euros, shared by the operator and the state. "
    "Construction is due to start in May and to finish by the end of 2027."
)
BULLETS = "5b0c7d3e-1f3a-4c8e-9a51-000000000002"
TLDR = "5b0c7d3e-1f3a-4c8e-9a51-000000000004"


def _summarize(tenant, document_id, template_id, django_capture_on_commit_callbacks, **options):
    from documents.models import Document
    from organizations.tenancy import org_scope
    from summaries.services import summarize_job_run, summary_request

    with django_capture_on_commit_callbacks(execute=True), org_scope(tenant.org.id):
        job = summary_request(
            org=tenant.org,
            user=tenant.member,
            document=Document.objects.get(pk=document_id),
            template_id=template_id,
            options=options,
        )
        summarize_job_run(job_id=job.pk)
    (summary,) = [
        s
        for s in tenant.client().get(f"/api/v1/summaries/?document={document_id}").json()["results"]
        if s["job"] == str(job.pk)
    ]
    return summary


@pytest.mark.django_db
def test_system_templates_formats_and_citations_through_the_api(tenant, django_capture_on_commit_callbacks):
    from conftest import admin_client

    api = tenant.client()
    document = api.post("/api/v1/documents/", {"title": "Harbour", "content": LONG_TEXT}, format="json").json()
    bullets = _summarize(tenant, document["id"], BULLETS, django_capture_on_commit_callbacks)
    lines = bullets["content"].split("\n")
    assert len(lines) >= 2 and all(line.startswith("- ") for line in lines)
    assert bullets["parameters"]["format"] == "bullets" and bullets["parameters"]["max_words"] == 120
    tldr = _summarize(tenant, document["id"], TLDR, django_capture_on_commit_callbacks)
    assert "\n" not in tldr["content"] and len(tldr["content"].split()) <= 40
    prose = _summarize(
        tenant, document["id"], BULLETS, django_capture_on_commit_callbacks, format="prose", max_words=30
    )
    assert not prose["content"].startswith("- ") and len(prose["content"].split()) <= 30

    for summary in (bullets, tldr, prose):
        assert summary["citations"] and summary["stale"] is False
        for cite in summary["citations"]:
            sentence = summary["content"][cite["start"] : cite["end"]].removeprefix("- ")
            (source,) = cite["sources"]
            assert LONG_TEXT[source["start"] : source["end"]] == sentence and source["page"] is None

    from realtime.models import StoredEvent

    created = StoredEvent.unscoped_objects.get(type="summary.created", data__id=bullets["id"])
    assert created.data["citations"] == bullets["citations"]  # the event carries them too

    page = admin_client(tenant.admin).get(f"/admin/summaries/summary/{bullets['id']}/change/").content.decode()
    first = bullets["citations"][0]["sources"][0]
    assert f"<mark>{LONG_TEXT[first['start'] : first['end']]}</mark>" in page.replace("&#x27;", "'")

    api.patch(f"/api/v1/documents/{document['id']}/", {"content": "Something else entirely."}, format="json")
    again = api.get(f"/api/v1/summaries/{bullets['id']}/").json()
    assert again["stale"] is True and again["citations"] == bullets["citations"]  # kept, marked stale
