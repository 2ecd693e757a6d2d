"""Type detection, extraction and normalisation for every supported format and refusal."""

import re

import pytest

from config.errors import PayloadTooLarge
from documents import extraction
from documents.extraction import ExtractionFailed, Limits, UnsupportedFileType, extract_bytes, normalize_text
from documents.tests import files

LIMITS = Limits(max_chars=100_000, max_pdf_pages=50, max_archive_bytes=10_000_000, max_archive_entries=500)


def run(data: bytes, name: str, limits: Limits = LIMITS):
    return extract_bytes(data, filename=name, limits=limits)


class TestText:
    def test_utf8_text(self):
        result = run("Hello wörld ✓".encode(), "a.txt")
        assert (result.text, result.content_type, result.title) == ("Hello wörld ✓", "text/plain", "a")

    def test_utf8_bom_stripped(self):
        assert run("\ufeffhi".encode(), "a.txt").text == "hi"

    def test_markdown_kept_as_markdown(self):
        result = run(b"# Title\n\n* item", "notes.md")
        assert result.content_type == "text/markdown" and result.text == "# Title\n\n* item"

    def test_other_encodings_detected(self):
        text = "Café crème brûlée, déjà vu, naïve façade. " * 20
        result = run(text.encode("cp1252"), "menu.txt")
        assert result.text == text.strip()
        assert result.metadata["encoding"] != "utf-8"

    def test_cyrillic_legacy_encoding(self):
        text = "Привет, как дела? Это тестовый документ на русском языке."
        assert run(text.encode("cp1251"), "ru.txt").text == text

    def test_utf16_with_bom(self):
        assert run("Grüße aus Köln".encode("utf-16"), "a.txt").text == "Grüße aus Köln"

    def test_unicode_round_trip(self):
        text = "漢字かな交じり文 — עברית مرحبا — 🚀🎉 — e\u0301 — 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"
        assert run(text.encode(), "u.txt").text == normalize_text(text)

    def test_normalisation_nfc_and_controls(self):
        raw = "e\u0301\x00a\x07b\tc\r\nd\x1b\x7f"
        assert normalize_text(raw) == "\u00e9ab\tc\r\nd"

    def test_empty_text_refused(self):
        with pytest.raises(ExtractionFailed) as exc:
            run(b"  \n\t \x07 ", "blank.txt")
        assert exc.value.get_codes() == "empty_document"

    def test_too_long(self):
        with pytest.raises(PayloadTooLarge) as exc:
            run(b"x" * 200_000, "big.txt")
        assert exc.value.get_codes() == "document_too_long"

    def test_unknown_extension_but_text_content_accepted(self):
        assert run(b"a,b\n1,2", "data.csv").content_type == "text/plain"


class TestHTML:
    def test_visible_text_only(self):
        result = run(files.HTML_PAGE.encode(), "report.html")
        assert result.content_type == "text/html"
        assert result.title == "Quarterly Report"
        assert "Revenue grew" in result.text and "12%" in result.text and "North" in result.text
        for hidden in ("alert", "color: red", "<b>", "enable javascript", "never shown"):
            assert hidden not in result.text

    def test_sniffed_without_extension(self):
        assert run(files.HTML_PAGE.encode(), "upload").content_type == "text/html"

    def test_txt_with_markup_stays_text(self):
        assert run(b"<html>literally</html>", "a.txt").text == "<html>literally</html>"


class TestPDF:
    def test_text_and_pages(self):
        result = run(files.pdf_bytes(["First page text", "Second page text"], title="Annual"), "r.pdf")
        assert result.content_type == "application/pdf"
        assert "First page text" in result.text and "Second page text" in result.text
        assert result.metadata["pages"] == 2 and result.title == "Annual"

    def test_detected_by_content_without_extension(self):
        assert run(files.pdf_bytes(["Hi there"]), "blob").content_type == "application/pdf"

    def test_password_protected_refused(self):
        with pytest.raises(ExtractionFailed) as exc:
            run(files.encrypted_pdf_bytes("secret text"), "locked.pdf")
        assert exc.value.get_codes() == "encrypted_pdf"

    def test_owner_only_encryption_opens(self):
        assert "open text" in run(files.owner_only_encrypted_pdf_bytes("open text"), "o.pdf").text

    @pytest.mark.parametrize(
        "data",
        [b"%PDF-1.7\n garbage that is not a pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ntrailer<<>>\n%%EOF"],
    )
    def test_malformed_refused(self, data):
        with pytest.raises(ExtractionFailed) as exc:
            run(data, "broken.pdf")
        assert exc.value.get_codes() in {"malformed_pdf", "empty_document"}

    def test_truncated_pdf(self):
        data = files.pdf_bytes(["Some text here"])
        with pytest.raises((ExtractionFailed, PayloadTooLarge)):
            run(data[: len(data) // 3], "cut.pdf")

    def test_page_limit(self):
        limits = Limits(**{**LIMITS.__dict__, "max_pdf_pages": 2})
        with pytest.raises(PayloadTooLarge) as exc:
            run(files.pdf_bytes(["a", "b", "c"]), "long.pdf", limits)
        assert exc.value.get_codes() == "too_many_pages"

    def test_pdf_named_txt_is_refused(self):
        with pytest.raises(UnsupportedFileType) as exc:
            run(files.pdf_bytes(["x"]), "notes.txt")
        assert exc.value.get_codes() == "file_type_mismatch"


class TestDOCX:
    def test_paragraphs_and_tables_in_order(self):
        data = files.docx_bytes(["Intro paragraph", "Second"], table=[["Name", "Qty"], ["Apples", "3"]], title="Inv")
        result = run(data, "inv.docx")
        assert result.content_type == extraction.DOCX
        assert result.text == "Intro paragraph\nSecond\nName\tQty\nApples\t3"
        assert result.title == "Inv"

    def test_zip_bomb_refused_before_inflating(self):
        with pytest.raises(PayloadTooLarge) as exc:
            run(files.docx_bomb_bytes(20 * 1024 * 1024), "bomb.docx")
        assert exc.value.get_codes() == "archive_too_large"

    def test_inflated_size_limit(self):
        limits = Limits(**{**LIMITS.__dict__, "max_archive_bytes": 1000})
        with pytest.raises(PayloadTooLarge):
            run(files.docx_bytes(["fine"]), "a.docx", limits)

    def test_plain_zip_refused(self):
        with pytest.raises(UnsupportedFileType):
            run(files.zip_bytes(), "a.zip")

    def test_damaged_docx(self):
        data = files.docx_bytes(["x"])
        with pytest.raises(ExtractionFailed):
            run(data[:200], "a.docx")


class TestRefusals:
    @pytest.mark.parametrize(
        "data, name",
        [
            (b"GIF89a" + b"\0" * 100, "image.gif"),
            (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "sneaky.txt"),
            (b"\xd0\xcf\x11\xe0" + b"\0" * 100, "old.doc"),
            (b"\x00\x01\x02\x03binary", "data.bin"),
        ],
    )
    def test_binary_types_415(self, data, name):
        with pytest.raises(UnsupportedFileType):
            run(data, name)

    @pytest.mark.parametrize("name", ["fake.pdf", "fake.docx"])
    def test_text_pretending_to_be_binary_format(self, name):
        with pytest.raises(UnsupportedFileType) as exc:
            run(b"just some text", name)
        assert exc.value.get_codes() == "file_type_mismatch"


class TestLayout:
    """Paged text back to prose (documents/extraction/layout.py)."""

    def pages(self, count: int, body) -> list[str]:
        return [f"ACME Handbook\n{body(n)}\n- {n} -" for n in range(1, count + 1)]

    def test_running_header_and_page_numbers_go(self):
        from documents.extraction import layout

        bodies = ["Apples grow in the north.", "Pears ripen late.", "Plums need sun.", "Cherries come first."]
        text, offsets = layout.rebuild(self.pages(4, lambda n: bodies[n - 1]))
        assert "ACME Handbook" not in text and "- 2 -" not in text
        assert text.split("\n\n") == bodies
        assert [text[offset:].split("\n\n")[0] for offset in offsets] == bodies

    def test_a_line_on_only_some_pages_stays(self):
        from documents.extraction import layout

        pages = ["Warning: draft\nOne.", "Two.", "Three.", "Four."]
        assert "Warning: draft" in layout.rebuild(pages)[0]

    def test_two_pages_are_too_few_to_call_anything_running(self):
        from documents.extraction import layout

        text, _ = layout.rebuild(["Title line\nFirst page.", "Title line\nSecond page."])
        assert text.count("Title line") == 2

    def test_wrapped_lines_and_hyphenation(self):
        from documents.extraction import layout

        page = (
            "The committee reviewed the proposal for the new inter-\n"
            "national terminal and a year-on-\n"
            "year comparison of passenger numbers in great detail.\n"
            "\n"
            "A second paragraph."
        )
        text, _ = layout.rebuild([page])
        assert text.split("\n\n") == [
            "The committee reviewed the proposal for the new international terminal and a year-on-year "
            "comparison of passenger numbers in great detail.",
            "A second paragraph.",
        ]

    def test_a_paragraph_runs_over_the_page_break(self):
        from documents.extraction import layout

        text, offsets = layout.rebuild(["It began on the first page and", "went on to the second page."])
        assert text == "It began on the first page and went on to the second page."
        assert offsets == [0, text.index("went")]


class TestDOCXStructure:
    def test_nested_tables_keep_their_text_in_order(self):
        from documents.tests import hostile_files

        text = run(hostile_files.docx_nested_tables(5), "nested.docx").text
        assert re.findall(r"level \d", text) == [f"level {n}" for n in range(1, 6)]  # inner tables included

    def test_tables_that_stalled_python_docx_read_at_once(self):
        from documents.tests import hostile_files

        assert run(hostile_files.docx_vertical_merge_table(900), "merged.docx").text == "merged"
        assert run(hostile_files.docx_wide_span_table(), "wide.docx").text == "wide"


class TestHTMLMainContent:
    PAGE = """<html><head><title>Ferry terminal approved</title></head><body>
    <nav><a href="/">Home</a> <a href="/news">News</a> <a href="/sport">Sport</a></nav>
    <div id="cookie-banner">We use cookies to improve your experience. Accept all cookies</div>
    <article><h1>Ferry terminal approved</h1>
    <p>The harbour authority approved the new ferry terminal on Tuesday after two years of debate.</p>
    <p>Construction starts in the spring, and the first ferries should dock there within three years.</p>
    <p>The terminal will handle up to four million passengers a year, twice the current capacity.</p>
    </article>
    <aside>Most read: Local team wins the cup</aside>
    <footer>Copyright 2026 Harbour News. All rights reserved. Privacy policy</footer>
    </body></html>"""

    def test_the_article_without_navigation_banners_and_footers(self):
        result = run(self.PAGE.encode(), "article.html")
        assert result.title == "Ferry terminal approved"
        for sentence in ("approved the new ferry terminal", "Construction starts", "four million passengers"):
            assert sentence in result.text
        for boilerplate in ("Sport", "cookies", "Copyright", "Privacy policy", "Most read"):
            assert boilerplate not in result.text

    def test_a_page_without_main_content_gives_its_visible_text(self):
        text = run(b"<html><body><ul><li>North</li><li>South</li></ul></body></html>", "list.html").text
        assert text.split() == ["North", "South"]


class TestOCRUnavailable:
    def test_names_the_package_instead_of_crashing(self, monkeypatch):
        from documents.extraction import ocr
        from documents.tests import hostile_files

        monkeypatch.setattr(ocr.shutil, "which", lambda tool: None)  # a bare machine: no tesseract
        with pytest.raises(ExtractionFailed) as exc:
            run(hostile_files.scanned_png(["Some words"]), "scan.png")
        assert exc.value.get_codes() == "ocr_unavailable" and "tesseract-ocr" in str(exc.value.detail)
        with pytest.raises(ExtractionFailed) as exc:
            run(hostile_files.scanned_pdf(["Some words"]), "scan.pdf")
        assert exc.value.get_codes() == "ocr_unavailable" and "ocrmypdf" in str(exc.value.detail)


class TestScannedPages:
    def mixed_pdf(self) -> bytes:
        """Typed page, scanned page, typed page."""
        import io

        from pypdf import PdfReader, PdfWriter

        from documents.tests import hostile_files

        typed = PdfReader(io.BytesIO(files.pdf_bytes(["The typed first page ends here.", "The typed last page."])))
        scan = PdfReader(io.BytesIO(hostile_files.scanned_pdf(["The harbour authority approved the terminal."])))
        writer = PdfWriter()
        for page in (typed.pages[0], scan.pages[0], typed.pages[1]):
            writer.add_page(page)
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()

    def test_only_the_scanned_pages_are_read_by_ocr(self):
        result = run(self.mixed_pdf(), "mixed.pdf")
        assert result.metadata["ocr"] is True and result.metadata["ocr_pages"] == [2]
        assert "The typed first page ends here." in result.text and "The typed last page." in result.text
        assert "harbour authority approved the terminal" in result.text
        assert "OCR skipped" not in result.text
        _, second, third = result.metadata["page_offsets"]
        assert result.text[second:third].strip().startswith("The harbour")

    def test_more_scanned_pages_than_ocr_reads(self):
        from documents.tests import hostile_files

        limits = Limits(**{**LIMITS.__dict__, "ocr_max_pages": 2})
        with pytest.raises(PayloadTooLarge) as exc:
            run(hostile_files.scanned_pdf(["Words"], pages=3), "scan.pdf", limits)
        assert exc.value.get_codes() == "too_many_pages" and "3 scanned pages" in str(exc.value.detail)
