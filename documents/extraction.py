"""Text extraction from uploaded files: type detection by content, limits, normalisation.

Supported: plain text and Markdown (UTF-8, or another encoding detected by
charset-normalizer), HTML (visible text only), PDF (pypdf), DOCX (python-docx).
The type is decided from the bytes; a known extension that disagrees with
them (a `.pdf` that is not a PDF) is refused. Every refusal is a PrecisError
with a stable code: 415 for unsupported or mismatched types, 413 for limits,
400 for unreadable content.
"""

from __future__ import annotations

import io
import re
import time
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import BinaryIO

from django.conf import settings
from rest_framework import status

from config.errors import PayloadTooLarge, PrecisError

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HTML = "text/html"
MARKDOWN = "text/markdown"
TEXT = "text/plain"

SUPPORTED_EXTENSIONS = {
    ".pdf": PDF,
    ".docx": DOCX,
    ".html": HTML,
    ".htm": HTML,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".txt": TEXT,
}
_TEXT_KINDS = {HTML, MARKDOWN, TEXT}

# Magic numbers of common binary formats we do not extract (refused with 415, by name).
_BINARY_MAGIC = {
    b"\x89PNG": "PNG image",
    b"\xff\xd8\xff": "JPEG image",
    b"GIF8": "GIF image",
    b"\xd0\xcf\x11\xe0": "legacy Office (.doc/.xls) file",
    b"\x1f\x8b": "gzip archive",
    b"7z\xbc\xaf": "7-zip archive",
    b"Rar!": "RAR archive",
    b"\x7fELF": "executable",
    b"MZ": "Windows executable",
    b"%!PS": "PostScript file",
    b"{\\rtf": "RTF document",
}

# C0 controls except tab, newline, carriage return; DEL; unpaired surrogates.
_UNWANTED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_BLANK_RUNS = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")


class UnsupportedFileType(PrecisError):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    default_code = "unsupported_file_type"


class ExtractionFailed(PrecisError):
    """The file is of a supported type but its content cannot be used (400)."""


@dataclass(frozen=True)
class Limits:
    max_chars: int
    max_pdf_pages: int
    pdf_time_budget_s: float
    max_archive_bytes: int
    max_archive_entries: int

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            max_chars=settings.MAX_DOCUMENT_CHARS,
            max_pdf_pages=settings.MAX_PDF_PAGES,
            pdf_time_budget_s=settings.PDF_TIME_BUDGET_S,
            max_archive_bytes=settings.MAX_DOCX_UNCOMPRESSED_BYTES,
            max_archive_entries=settings.MAX_DOCX_ENTRIES,
        )


@dataclass(frozen=True)
class Extracted:
    text: str
    content_type: str
    title: str = ""
    metadata: dict = field(default_factory=dict)


def normalize_text(text: str) -> str:
    """NFC, no NUL/C0 controls (tab, LF, CR kept), no unpaired surrogates, no BOM."""
    text = _UNWANTED.sub("", text)
    text = unicodedata.normalize("NFC", text)
    return text.lstrip("\ufeff")


def check_length(text: str, limits: Limits) -> None:
    if len(text) > limits.max_chars:
        raise PayloadTooLarge(
            f"The document has {len(text)} characters; the limit is {limits.max_chars}.", "document_too_long"
        )


def extract(stream: BinaryIO, *, filename: str = "", limits: Limits | None = None) -> Extracted:
    """Detect the type of `stream` from its bytes and extract normalised text."""
    limits = limits or Limits.from_settings()
    stream.seek(0)
    head = stream.read(2048)
    stream.seek(0)
    extension = PurePath(filename or "").suffix.lower()
    kind = _detect(head, stream, extension)
    claimed = SUPPORTED_EXTENSIONS.get(extension)
    if claimed is not None and _family(claimed) != _family(kind):
        raise UnsupportedFileType(
            f"The file is named {extension} but its content is {_describe(kind)}.", "file_type_mismatch"
        )
    if kind == PDF:
        result = _extract_pdf(stream, limits)
    elif kind == DOCX:
        result = _extract_docx(stream, limits)
    else:
        result = _extract_text(stream.read(), kind, limits)
    text = normalize_text(result.text).strip()
    if not text:
        raise ExtractionFailed("No text could be extracted from this file.", "empty_document")
    check_length(text, limits)
    title = normalize_text(result.title).strip()[:500] or PurePath(filename or "").stem[:500]
    return Extracted(text=text, content_type=result.content_type, title=title, metadata=result.metadata)


def _family(kind: str) -> str:
    return kind if kind in (PDF, DOCX) else "text"


def _describe(kind: str) -> str:
    return {PDF: "a PDF", DOCX: "a DOCX document"}.get(kind, "text")


def _detect(head: bytes, stream: BinaryIO, extension: str) -> str:
    if b"%PDF-" in head[:1024]:
        return PDF
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(stream) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            raise ExtractionFailed("The file looks like a ZIP/DOCX archive but is damaged.", "malformed_docx") from None
        finally:
            stream.seek(0)
        if "word/document.xml" in names:
            return DOCX
        raise UnsupportedFileType("ZIP archives other than DOCX documents are not supported.", "unsupported_file_type")
    for magic, name in _BINARY_MAGIC.items():
        if head.startswith(magic):
            raise UnsupportedFileType(
                f"This looks like a {name}; supported are .txt, .md, .html, .pdf and .docx.", "unsupported_file_type"
            )
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnsupportedFileType(
            "This is a binary file; supported are .txt, .md, .html, .pdf and .docx.", "unsupported_file_type"
        )
    claimed = SUPPORTED_EXTENSIONS.get(extension)
    if claimed in _TEXT_KINDS:
        return claimed  # .txt stays raw text even if it holds markup; .html is parsed
    lowered = head[:1024].lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<body" in lowered:
        return HTML
    return TEXT


# -- text and HTML ----------------------------------------------------------------
def decode_text(data: bytes) -> tuple[str, str]:
    """UTF-8 first (with or without BOM); otherwise ask charset-normalizer, or refuse."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    best = matches[0] if matches else None
    # Western European text is the most common legacy case, and single-byte code
    # pages are hard to tell apart: prefer cp1252 when it reads about as cleanly.
    western = next((m for m in matches if m.encoding == "cp1252"), None)
    if best is not None and western is not None and western.chaos <= best.chaos + 0.15:
        best = western
    if best is None or best.encoding is None:
        raise ExtractionFailed(
            "The text is not UTF-8 and its encoding could not be determined; save it as UTF-8.", "undecodable_text"
        )
    return str(best), best.encoding


def _extract_text(data: bytes, kind: str, limits: Limits) -> Extracted:
    text, encoding = decode_text(data)
    if kind == HTML:
        return html_to_text(text, encoding=encoding)
    return Extracted(text=text, content_type=kind, metadata={"encoding": encoding})


_INVISIBLE_TAGS = ["script", "style", "noscript", "template", "svg", "iframe", "object", "embed", "head"]


def html_to_text(markup: str, *, encoding: str = "utf-8") -> Extracted:
    """Visible text only: no script/style/markup; block elements become line breaks."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(_INVISIBLE_TAGS):
        tag.decompose()
    text = soup.get_text("\n")
    lines = (" ".join(line.split()) for line in text.splitlines())
    text = _BLANK_RUNS.sub("\n\n", "\n".join(lines))
    return Extracted(text=text, content_type=HTML, title=title, metadata={"encoding": encoding})


# -- PDF ---------------------------------------------------------------------------
def _extract_pdf(stream: BinaryIO, limits: Limits) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    deadline = time.monotonic() + limits.pdf_time_budget_s
    try:
        reader = PdfReader(stream, strict=False)
        if reader.is_encrypted and not _pdf_decrypts_with_empty_password(reader):
            raise ExtractionFailed("The PDF is password-protected; upload an unprotected copy.", "encrypted_pdf")
        page_count = len(reader.pages)
        if page_count > limits.max_pdf_pages:
            raise PayloadTooLarge(
                f"The PDF has {page_count} pages; the limit is {limits.max_pdf_pages}.", "too_many_pages"
            )
        parts: list[str] = []
        total = 0
        for page in reader.pages:
            if time.monotonic() > deadline:
                raise PayloadTooLarge(
                    f"Extracting the PDF took longer than {limits.pdf_time_budget_s:g} s.", "extraction_timeout"
                )
            text = page.extract_text() or ""
            total += len(text)
            if total > limits.max_chars * 2:  # far beyond the limit even after whitespace clean-up
                raise PayloadTooLarge(f"The document exceeds {limits.max_chars} characters.", "document_too_long")
            parts.append(text)
        title = ""
        try:
            title = str((reader.metadata or {}).get("/Title") or "")
        except Exception:  # broken metadata does not make the text unusable
            title = ""
    except PrecisError:
        raise
    except (
        PyPdfError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        IndexError,
        RecursionError,
        OSError,
        zlib.error,
    ) as exc:
        raise ExtractionFailed(f"The PDF could not be read ({exc.__class__.__name__}).", "malformed_pdf") from None
    return Extracted(text="\n\n".join(parts), content_type=PDF, title=title, metadata={"pages": page_count})


def _pdf_decrypts_with_empty_password(reader) -> bool:
    """Many PDFs are 'encrypted' only with an owner password: those open with ''."""
    try:
        return bool(reader.decrypt(""))
    except Exception:
        return False


# -- DOCX --------------------------------------------------------------------------
def _check_archive(stream: BinaryIO, limits: Limits) -> None:
    """Refuse zip bombs from the central directory, before inflating anything."""
    try:
        with zipfile.ZipFile(stream) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ExtractionFailed("The DOCX file is damaged.", "malformed_docx") from None
    finally:
        stream.seek(0)
    if len(infos) > limits.max_archive_entries:
        raise PayloadTooLarge(f"The DOCX has more than {limits.max_archive_entries} parts.", "archive_too_large")
    total = sum(info.file_size for info in infos)
    if total > limits.max_archive_bytes:
        raise PayloadTooLarge(
            f"The DOCX would inflate to {total} bytes; the limit is {limits.max_archive_bytes}.", "archive_too_large"
        )
    for info in infos:
        if info.file_size > 1_000_000 and info.compress_size and info.file_size / info.compress_size > 200:
            raise PayloadTooLarge("The DOCX is compressed suspiciously well (a zip bomb?).", "archive_too_large")


def _extract_docx(stream: BinaryIO, limits: Limits) -> Extracted:
    _check_archive(stream, limits)
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(stream)
        parts = list(_docx_blocks(document))
        title = document.core_properties.title or ""
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile, AttributeError, OSError) as exc:
        raise ExtractionFailed(f"The DOCX could not be read ({exc.__class__.__name__}).", "malformed_docx") from None
    except Exception as exc:  # lxml errors on broken XML parts
        if exc.__class__.__module__.startswith("lxml"):
            raise ExtractionFailed("The DOCX contains broken XML.", "malformed_docx") from None
        raise
    return Extracted(text="\n".join(parts), content_type=DOCX, title=title, metadata={})


def _docx_blocks(document):
    """Paragraphs and tables in body order; table rows as tab-separated cells."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            yield Paragraph(child, document).text
        elif tag == "tbl":
            for row in Table(child, document).rows:
                yield "\t".join(cell.text for cell in row.cells)


def extract_bytes(data: bytes, *, filename: str = "", limits: Limits | None = None) -> Extracted:
    return extract(io.BytesIO(data), filename=filename, limits=limits)
