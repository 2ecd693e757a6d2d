"""Text from files: type detection by content, the readers, normalisation, limits.

Supported: plain text and Markdown (UTF-8, or another encoding detected by
charset-normalizer), HTML (the main content), PDF (PDFium; scanned pages by OCR), DOCX
(the body, streamed), and images (PNG, JPEG, TIFF: OCR). The type is decided from the
bytes; a known extension that disagrees with them (a `.pdf` that is not a PDF) is
refused. Every refusal is a PrecisError with a stable code: 415 for unsupported or
mismatched types, 413 for limits, 400 for unreadable content.

`sniff()` runs in the request that accepts a file; everything else runs in the
sandboxed child (`extract_file`, documents.sandbox), never in a web or worker process.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import BinaryIO

from django.conf import settings

from . import docx, html, language, layout, ocr, pdf
from .detect import (
    DOCX,
    HTML,
    IMAGES,
    MARKDOWN,
    PDF,
    SUPPORTED_EXTENSIONS,
    TEXT,
    guess_type,
    sniff,
)
from .errors import ExtractionFailed, UnsupportedFileType
from .text import check_length, decode_text, normalize_text

__all__ = [
    "DOCX",
    "HTML",
    "MARKDOWN",
    "PDF",
    "SUPPORTED_EXTENSIONS",
    "TEXT",
    "Extracted",
    "ExtractionFailed",
    "Limits",
    "UnsupportedFileType",
    "check_length",
    "decode_text",
    "extract",
    "extract_bytes",
    "extract_file",
    "guess_type",
    "normalize_text",
    "sniff",
    "warm",
]


@dataclass(frozen=True)
class Limits:
    max_chars: int
    max_pdf_pages: int
    max_archive_bytes: int
    max_archive_entries: int
    ocr_languages: str = "eng"
    ocr_page_s: float = 15.0
    ocr_max_pages: int = 500

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            max_chars=settings.MAX_DOCUMENT_CHARS,
            max_pdf_pages=settings.MAX_PDF_PAGES,
            max_archive_bytes=settings.MAX_DOCX_UNCOMPRESSED_BYTES,
            max_archive_entries=settings.MAX_DOCX_ENTRIES,
            ocr_languages=settings.OCR_LANGUAGES,
            ocr_page_s=settings.OCR_PAGE_TIMEOUT_S,
            ocr_max_pages=settings.OCR_MAX_PAGES,
        )


@dataclass(frozen=True)
class Extracted:
    text: str
    content_type: str
    title: str = ""
    metadata: dict = field(default_factory=dict)
    language: str = ""


def extract_path(path: str, *, filename: str = "", limits: Limits | None = None) -> Extracted:
    """Detect the type of the file at `path` and extract normalised text."""
    limits = limits or Limits.from_settings()
    with open(path, "rb") as stream:
        kind = sniff(stream, filename=filename)
        if kind == PDF:
            read = pdf.read(path, limits)
            raw, title, metadata = read.text, read.title, read.metadata
        elif kind in IMAGES:
            ocr.announce(1, limits.ocr_page_s)
            pages, count = ocr.image_text(path, languages=limits.ocr_languages)
            raw, offsets = layout.rebuild(pages)
            title, metadata = "", {"pages": count, "ocr": True, "ocr_pages": list(range(1, count + 1))}
            metadata["page_offsets"] = offsets
        elif kind == DOCX:
            raw, title = docx.read(
                stream,
                max_bytes=limits.max_archive_bytes,
                max_entries=limits.max_archive_entries,
                max_chars=limits.max_chars,
            )
            metadata = {}
        else:
            text, encoding = decode_text(stream.read())
            metadata = {"encoding": encoding}
            if kind == HTML:
                raw, title = html.main_text(text), html.title_of(text)
            else:
                raw, title = text, ""
    text = normalize_text(raw).strip()
    if not text:
        detail = "No text could be read from this file."
        if kind == PDF and metadata.get("ocr"):
            detail = "OCR found no text on the scanned pages."
        raise ExtractionFailed(detail, "empty_document")
    check_length(text, limits.max_chars)
    title = normalize_text(title).strip()[:500] or PurePath(filename or "").stem[:500]
    return Extracted(text=text, content_type=kind, title=title, metadata=metadata, language=language.detect(text))


def extract(stream: BinaryIO, *, filename: str = "", limits: Limits | None = None) -> Extracted:
    """The same for a stream (tests, benchmarks): written to a temporary file first."""
    import tempfile

    stream.seek(0)
    with tempfile.NamedTemporaryFile(prefix="precis-extract-") as handle:
        handle.write(stream.read())
        handle.flush()
        return extract_path(handle.name, filename=filename, limits=limits)


def extract_bytes(data: bytes, *, filename: str = "", limits: Limits | None = None) -> Extracted:
    return extract(io.BytesIO(data), filename=filename, limits=limits)


def extract_file(path: str, filename: str, options: dict) -> dict:
    """The sandboxed entry point (documents.sandbox_child): JSON in, JSON out."""
    limits = Limits(
        max_chars=int(options["max_chars"]),
        max_pdf_pages=int(options["max_pdf_pages"]),
        max_archive_bytes=int(options["max_archive_bytes"]),
        max_archive_entries=int(options["max_archive_entries"]),
        ocr_languages=str(options.get("ocr_languages") or "eng"),
        ocr_page_s=float(options.get("ocr_page_s", 15.0)),
        ocr_max_pages=int(options.get("ocr_max_pages", 500)),
    )
    result = extract_path(path, filename=filename, limits=limits)
    return {
        "text": result.text,
        "content_type": result.content_type,
        "title": result.title,
        "metadata": result.metadata,
        "language": result.language,
    }


def warm() -> None:
    """Load the readers and the language model before a file arrives (sandbox_child)."""
    import bs4  # noqa: F401
    import lxml.etree  # noqa: F401
    import pypdfium2  # noqa: F401
    import trafilatura  # noqa: F401

    language.detect("warming up the language model with a sentence long enough to be classified at all")
