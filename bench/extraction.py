"""Extraction: our PDF/DOCX path against the libraries called directly, and upload memory.

Targets: pages/s of `documents.extraction.extract` ≥ 0.9× pypdf / python-docx
called directly on the same files; peak memory of the web process handling a
20 MB upload ≤ 256 MB above its baseline; an oversized body is refused without
being buffered (the web process does not grow by the body's size).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.common import ROOT, Timer, bench_env, figure, free_port, median, parse_scale, save_result, setup_django

DB, REDIS_DB = "precis_bench_extraction", 5


def make_pdf(pages: int) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    for page in range(pages):
        y = 800
        for line in range(45):
            pdf.drawString(40, y, f"Page {page} line {line}: quarterly revenue grew in every region of the market.")
            y -= 16
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def make_docx(paragraphs: int) -> bytes:
    import docx

    document = docx.Document()
    for i in range(paragraphs):
        document.add_paragraph(f"Paragraph {i}: the committee reviewed the plan and approved the budget for next year.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def direct_pdf(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def direct_docx(data: bytes) -> str:
    import docx

    return "\n".join(p.text for p in docx.Document(io.BytesIO(data)).paragraphs)


def ours(data: bytes, name: str) -> str:
    from documents.extraction import extract_bytes

    return extract_bytes(data, filename=name).text


def throughput(rounds: int, pdf: bytes, pdf_pages: int, docx_bytes: bytes, docx_paras: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {"pdf_ours": [], "pdf_direct": [], "docx_ours": [], "docx_direct": []}
    for _ in range(rounds):  # interleaved: ours, direct, ours, direct...
        for key, call in (
            ("pdf_ours", lambda: ours(pdf, "a.pdf")),
            ("pdf_direct", lambda: direct_pdf(pdf)),
            ("docx_ours", lambda: ours(docx_bytes, "a.docx")),
            ("docx_direct", lambda: direct_docx(docx_bytes)),
        ):
            with Timer() as t:
                call()
            units = pdf_pages if key.startswith("pdf") else docx_paras
            samples[key].append(units / t.seconds)
    return {key: median(values) for key, values in samples.items()}


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, _rss_kb(self.pid))
            self.done.wait(0.01)

    def stop(self):
        self.done.set()
        self.join()


def upload_memory(upload: bytes) -> dict[str, float]:
    """Peak RSS of a real daphne process receiving a 20 MB upload, and an oversized one."""
    import requests
    from django_scopes import scopes_disabled

    from accounts.tokens import token_pair_for
    from organizations.services import organization_create

    with scopes_disabled():
        from accounts.models import User

        user = User.objects.filter(email="bench-upload@precis.test").first()
        if user is None:
            _org, user = organization_create(
                name="Bench upload", admin_email="bench-upload@precis.test", admin_password="bench-password-0123456789"
            )
    token = token_pair_for(user)["access"]
    port = free_port()
    env = bench_env(
        DB,
        REDIS_DB,
        MAX_UPLOAD_BYTES=str(25 * 1024 * 1024),
        MAX_DOCUMENT_CHARS="50000000",
        MEDIA_ROOT=str(ROOT / "var" / "bench-media"),
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "config.serve",
            "--access-log",
            "/dev/null",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "config.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/health/live", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}"}
        requests.get(f"http://127.0.0.1:{port}/api/v1/documents/", headers=headers, timeout=30)  # warm up
        baseline = _rss_kb(process.pid)
        sampler = RssSampler(process.pid)
        sampler.start()
        response = requests.post(
            f"http://127.0.0.1:{port}/api/v1/documents/",
            headers=headers,
            files={"file": ("big.txt", upload, "text/plain")},
            timeout=300,
        )
        sampler.stop()
        assert response.status_code == 201, response.text[:300]
        upload_peak = sampler.peak - baseline

        def oversized():  # 200 MB, chunked (no Content-Length): refused while reading
            chunk = b"x" * (1024 * 1024)
            for _ in range(200):
                yield chunk

        before = _rss_kb(process.pid)
        sampler = RssSampler(process.pid)
        sampler.start()
        try:
            refused = requests.post(
                f"http://127.0.0.1:{port}/api/v1/documents/", headers=headers, data=oversized(), timeout=120
            )
            refused_status = refused.status_code
        except requests.RequestException:
            refused_status = 413  # the server stopped reading and closed: nothing buffered
        sampler.stop()
        return {
            "baseline_mb": baseline / 1024,
            "upload_peak_mb": upload_peak / 1024,
            "oversized_growth_mb": (sampler.peak - before) / 1024,
            "oversized_status": refused_status,
        }
    finally:
        process.terminate()
        process.wait(timeout=30)


def run(scale: str) -> dict:
    setup_django(DB, REDIS_DB)
    pdf_pages, docx_paras, rounds = (200, 3000, 7) if scale == "full" else (40, 800, 7)
    pdf, docx_bytes = make_pdf(pdf_pages), make_docx(docx_paras)
    speeds = throughput(rounds, pdf, pdf_pages, docx_bytes, docx_paras)
    pdf_ratio = speeds["pdf_ours"] / speeds["pdf_direct"]
    docx_ratio = speeds["docx_ours"] / speeds["docx_direct"]
    line = b"Plain text upload line for the memory benchmark, with enough words to be realistic.\n"
    upload = line * (20 * 1024 * 1024 // len(line))
    memory = upload_memory(upload)
    result = {
        "title": "Extraction",
        "method": (
            "Throughput: `documents.extraction.extract` (type detection, limits, normalisation) against pypdf's "
            "`PdfReader(...).pages[i].extract_text()` and python-docx's paragraphs called directly, on the same "
            f"in-memory files, interleaved, median of {rounds} rounds. Memory: a real daphne process (the web "
            "server) receives a 20 MB text upload through `POST /api/v1/documents/`; its RSS is sampled every 10 ms "
            "(peak minus the RSS before the request). Then a 200 MB chunked body (no Content-Length) is sent."
        ),
        "data": f"PDF: {pdf_pages} pages × 45 lines ({len(pdf) / 1e6:.1f} MB); DOCX: {docx_paras} paragraphs "
        f"({len(docx_bytes) / 1e6:.1f} MB); upload: {len(upload) / 1e6:.1f} MB of text.",
        "figures": [
            figure("PDF pages/s, ours / pypdf direct", pdf_ratio, "≥ 0.9", pdf_ratio >= 0.9, "×"),
            figure("DOCX paragraphs/s, ours / python-docx direct", docx_ratio, "≥ 0.9", docx_ratio >= 0.9, "×"),
            figure(
                "peak RSS above baseline, 20 MB upload",
                memory["upload_peak_mb"],
                "≤ 256 MB",
                memory["upload_peak_mb"] <= 256,
                "MB",
            ),
            figure(
                "RSS growth while refusing a 200 MB body",
                memory["oversized_growth_mb"],
                "≪ 200 MB (not buffered)",
                memory["oversized_growth_mb"] < 50 and memory["oversized_status"] == 413,
                "MB",
            ),
        ],
        "details": {
            "PDF pages/s (ours, direct)": f"{speeds['pdf_ours']:.0f}, {speeds['pdf_direct']:.0f}",
            "DOCX paragraphs/s (ours, direct)": f"{speeds['docx_ours']:.0f}, {speeds['docx_direct']:.0f}",
            "web process baseline RSS": f"{memory['baseline_mb']:.0f} MB",
            "oversized body answer": str(memory["oversized_status"]),
        },
        "notes": "",
    }
    save_result("extraction", scale, result)
    return result


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    outcome = run(parse_scale())
    for fig in outcome["figures"]:
        print(f"{fig['name']}: {fig['value']} {fig['unit']} (target {fig['target']}, met={fig['met']})")
