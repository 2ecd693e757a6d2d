"""PDF text with PDFium (pypdfium2): page by page, then back to prose (layout.py).

Chosen over pypdf by measurement (docs/benchmarks.md, "Extraction"): faster, and its
text follows the page's lines. Pages with (almost) no text layer are scanned: they are
read with OCR (ocr.py). Runs only in the sandboxed child (documents.sandbox).
"""

from __future__ import annotations

from dataclasses import dataclass

from config.errors import PayloadTooLarge

from . import layout, ocr
from .errors import ExtractionFailed

SCANNED_CHARS = 20  # a page with fewer characters and an image on it is a scan


@dataclass(frozen=True)
class PdfText:
    text: str
    title: str
    metadata: dict


def _open(path: str):
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise ExtractionFailed(
                "The PDF is password-protected; upload an unprotected copy.", "encrypted_pdf"
            ) from None
        raise ExtractionFailed(f"The PDF could not be read ({exc}).", "malformed_pdf") from None


def page_texts(path: str, *, max_pages: int, max_chars: int) -> tuple[list[str], list[int], str]:
    """Each page's text as PDFium lays it out, the (1-based) pages that are scans (an image,
    next to no text), and the document's title."""
    import pypdfium2.raw as pdfium_c

    document = _open(path)
    try:
        count = len(document)
        if count > max_pages:
            raise PayloadTooLarge(f"The PDF has {count} pages; the limit is {max_pages}.", "too_many_pages")
        pages, scanned, total = [], [], 0
        for index in range(count):
            page = document[index]
            try:
                textpage = page.get_textpage()
                try:
                    # PDFium ends lines with CRLF, and marks a line-end hyphen with U+0002
                    # (joining the lines): put both back, layout.py decides.
                    text = textpage.get_text_bounded().replace("\r\n", "\n").replace("\x02", "-\n")
                finally:
                    textpage.close()
                if len(text.strip()) < SCANNED_CHARS and any(
                    obj.type == pdfium_c.FPDF_PAGEOBJ_IMAGE for obj in page.get_objects(max_depth=2)
                ):
                    scanned.append(index + 1)
            finally:
                page.close()
            total += len(text)
            if total > max_chars * 2:  # far beyond the limit even after clean-up
                raise PayloadTooLarge(f"The document exceeds {max_chars} characters.", "document_too_long")
            pages.append(text)
        try:
            title = str(document.get_metadata_dict().get("Title") or "")
        except Exception:  # broken metadata does not make the text unusable
            title = ""
        return pages, scanned, title
    finally:
        document.close()


def read(path: str, limits) -> PdfText:
    """The text of the PDF at `path` under `limits` (documents.extraction.Limits)."""
    pages, scanned, title = page_texts(path, max_pages=limits.max_pdf_pages, max_chars=limits.max_chars)
    metadata: dict = {"pages": len(pages)}
    if scanned:
        if len(scanned) > limits.ocr_max_pages:
            raise PayloadTooLarge(
                f"The PDF has {len(scanned)} scanned pages; OCR reads at most {limits.ocr_max_pages}.",
                "too_many_pages",
            )
        ocr.announce(len(scanned), limits.ocr_page_s)
        recognized = ocr.pdf_pages(path, languages=limits.ocr_languages, pages=scanned)
        for number in scanned:  # the text layer where there is one, OCR where there is none
            pages[number - 1] = recognized.get(number, "")
        metadata.update(ocr=True, ocr_pages=scanned)
    text, offsets = layout.rebuild(pages)
    metadata["page_offsets"] = offsets
    return PdfText(text=text, title=title, metadata=metadata)
