"""What a file is, from its first bytes (never from its name or Content-Type alone)."""

from __future__ import annotations

import zipfile
from pathlib import PurePath
from typing import BinaryIO

from .errors import ExtractionFailed, UnsupportedFileType

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HTML = "text/html"
MARKDOWN = "text/markdown"
TEXT = "text/plain"
PNG = "image/png"
JPEG = "image/jpeg"
TIFF = "image/tiff"
IMAGES = (PNG, JPEG, TIFF)

SUPPORTED_EXTENSIONS = {
    ".pdf": PDF,
    ".docx": DOCX,
    ".html": HTML,
    ".htm": HTML,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".txt": TEXT,
    ".png": PNG,
    ".jpg": JPEG,
    ".jpeg": JPEG,
    ".tif": TIFF,
    ".tiff": TIFF,
}
TEXT_KINDS = (HTML, MARKDOWN, TEXT)
SUPPORTED_NAMES = ".txt, .md, .html, .pdf, .docx, .png, .jpg and .tiff"

_IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": PNG, b"\xff\xd8\xff": JPEG, b"II*\x00": TIFF, b"MM\x00*": TIFF}
# Magic numbers of common binary formats we do not extract (refused with 415, by name).
_BINARY_MAGIC = {
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


def family(kind: str) -> str:
    if kind in IMAGES:
        return "image"
    return kind if kind in (PDF, DOCX) else "text"


def describe(kind: str) -> str:
    return {PDF: "a PDF", DOCX: "a DOCX document", "image": "an image"}.get(
        kind if kind not in IMAGES else "image", "text"
    )


def sniff(stream: BinaryIO, *, filename: str = "") -> str:
    """The type the first bytes say, refusing (415) what no extractor takes or what contradicts
    the file's name; cheap enough for the request that stores the file."""
    stream.seek(0)
    head = stream.read(2048)
    stream.seek(0)
    extension = PurePath(filename or "").suffix.lower()
    kind = _detect(head, stream, extension)
    claimed = SUPPORTED_EXTENSIONS.get(extension)
    if claimed is not None and family(claimed) != family(kind):
        raise UnsupportedFileType(
            f"The file is named {extension} but its content is {describe(kind)}.", "file_type_mismatch"
        )
    return kind


def guess_type(filename: str) -> str:
    """A provisional content type from the name, until the file is read."""
    return SUPPORTED_EXTENSIONS.get(PurePath(filename or "").suffix.lower(), TEXT)


def _detect(head: bytes, stream: BinaryIO, extension: str) -> str:
    if b"%PDF-" in head[:1024]:
        return PDF
    for magic, kind in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            return kind
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
                f"This looks like a {name}; supported are {SUPPORTED_NAMES}.", "unsupported_file_type"
            )
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnsupportedFileType(f"This is a binary file; supported are {SUPPORTED_NAMES}.", "unsupported_file_type")
    claimed = SUPPORTED_EXTENSIONS.get(extension)
    if claimed in TEXT_KINDS:
        return claimed  # .txt stays raw text even if it holds markup; .html is parsed
    lowered = head[:1024].lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<body" in lowered:
        return HTML
    return TEXT
