"""DOCX text: the body's paragraphs and tables in order, streamed from the XML.

The archive is checked from its central directory before anything is inflated (declared
sizes, entry count, compression ratio). Then `word/document.xml` is read with lxml's
iterparse, element by element and freed as it goes, so a body of a million paragraphs
costs time in proportion and no more memory than one paragraph (python-docx builds an
object per paragraph first). Table rows come out as tab-separated cells. Headers,
footers, footnotes and comments live in other parts of the archive and stay out of the
text, as running headers do for PDFs.
"""

from __future__ import annotations

import zipfile
from typing import BinaryIO

from config.errors import PayloadTooLarge

from .errors import ExtractionFailed

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_DC = "{http://purl.org/dc/elements/1.1/}"


def check_archive(stream: BinaryIO, *, max_bytes: int, max_entries: int) -> None:
    """Refuse zip bombs from the central directory, before inflating anything."""
    try:
        with zipfile.ZipFile(stream) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ExtractionFailed("The DOCX file is damaged.", "malformed_docx") from None
    finally:
        stream.seek(0)
    if len(infos) > max_entries:
        raise PayloadTooLarge(f"The DOCX has more than {max_entries} parts.", "archive_too_large")
    total = sum(info.file_size for info in infos)
    if total > max_bytes:
        raise PayloadTooLarge(
            f"The DOCX would inflate to {total} bytes; the limit is {max_bytes}.", "archive_too_large"
        )
    for info in infos:
        if info.file_size > 1_000_000 and info.compress_size and info.file_size / info.compress_size > 200:
            raise PayloadTooLarge("The DOCX is compressed suspiciously well (a zip bomb?).", "archive_too_large")


def read(stream: BinaryIO, *, max_bytes: int, max_entries: int, max_chars: int) -> tuple[str, str]:
    """(text, title) of a DOCX."""
    check_archive(stream, max_bytes=max_bytes, max_entries=max_entries)
    from lxml import etree

    try:
        with zipfile.ZipFile(stream) as archive:
            with archive.open("word/document.xml") as body:
                text = "\n".join(_blocks(etree, body, max_chars))
            title = _title(etree, archive)
    except (KeyError, zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ExtractionFailed(f"The DOCX could not be read ({exc.__class__.__name__}).", "malformed_docx") from None
    except etree.LxmlError:
        raise ExtractionFailed("The DOCX contains broken XML.", "malformed_docx") from None
    return text, title


def _blocks(etree, body, max_chars: int):
    """Paragraph texts and table rows, in body order."""
    cells: list[list[str]] = []  # the open table rows' cells (nested tables go into their cell)
    cell: list[list[str]] = []  # the open cells' paragraphs
    total = 0
    for event, element in etree.iterparse(body, events=("start", "end"), resolve_entities=False, huge_tree=False):
        tag = element.tag
        if event == "start":
            if tag == f"{_W}tr":
                cells.append([])
            elif tag == f"{_W}tc":
                cell.append([])
            continue
        if tag == f"{_W}p":
            text = _paragraph(element)
            _free(element)
            if cell:
                cell[-1].append(text)
                continue
            total += len(text) + 1
            if total > max_chars * 2:
                raise PayloadTooLarge(f"The document exceeds {max_chars} characters.", "document_too_long")
            yield text
        elif tag == f"{_W}tc" and cell:
            content = " ".join(part for part in cell.pop() if part)
            if cell:
                cell[-1].append(content)  # a table inside a cell: its text belongs to the cell
            elif cells:
                cells[-1].append(content)
            _free(element)
        elif tag == f"{_W}tr" and cells:
            row = "\t".join(cells.pop())
            if cell:
                cell[-1].append(row)
            else:
                total += len(row) + 1
                if total > max_chars * 2:
                    raise PayloadTooLarge(f"The document exceeds {max_chars} characters.", "document_too_long")
                yield row
            _free(element)
        elif element.getparent() is not None and element.getparent().tag == f"{_W}body":
            _free(element)  # section properties and the like: nothing to read


def _free(element) -> None:
    """Drop what was read: the element's content and the siblings before it."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def _paragraph(element) -> str:
    parts = []
    for node in element.iter(f"{_W}t", f"{_W}tab", f"{_W}br", f"{_W}cr"):
        if node.tag == f"{_W}t":
            parts.append(node.text or "")
        elif node.tag == f"{_W}tab":
            parts.append("\t")
        else:
            parts.append("\n")
    return "".join(parts)


def _title(etree, archive: zipfile.ZipFile) -> str:
    try:
        with archive.open("docProps/core.xml") as core:
            root = etree.parse(core, etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
    except (KeyError, etree.LxmlError):
        return ""
    title = root.find(f"{_DC}title")
    return (title.text or "").strip() if title is not None else ""
