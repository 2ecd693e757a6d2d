"""Hostile and layout-heavy fixture files built in the tests: PDF/DOCX bombs, scans, reports."""

from __future__ import annotations

import io
import random
import zipfile
import zlib
from collections.abc import Iterable, Iterator

# -- hand-written PDF --------------------------------------------------------------
_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"


def _pdf_stream(content: bytes, entries: bytes = b"") -> bytes:
    data = zlib.compress(content, 9)
    return b"<< %s /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream" % (entries, len(data), data)


def _pdf_file(objects: list[bytes]) -> bytes:
    """Objects numbered from 1, object 1 the catalog, with a byte-exact xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _one_page_pdf(page_content: bytes, xobjects: list[bytes]) -> bytes:
    """Catalog 1, pages 2, page 3, Helvetica 4, page content 5, then `xobjects` from 6 (the page uses /X = 6)."""
    return _pdf_file(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 5 0 R"
            b" /Resources << /XObject << /X 6 0 R >> >> >>",
            _FONT,
            _pdf_stream(page_content),
            *xobjects,
        ]
    )


def _form(content: bytes, resources: bytes) -> bytes:
    return _pdf_stream(content, b"/Type /XObject /Subtype /Form /BBox [0 0 595 842] /Resources %s" % resources)


def nested_xobject_pdf(depth: int = 4, fanout: int = 40) -> bytes:
    """One page, a few KB, whose text draws multiply through nested forms: fanout**depth lines.

    The page draws form 1 once; form k draws form k+1 `fanout` times; the innermost
    draws a line of text `fanout` times. A per-page time budget checked between pages
    never gets a chance to fire. pypdf 7.1 `extract_text()` (2 CPUs, this machine):
    MEASURED_PLACEHOLDER
    """
    if depth < 1:
        raise ValueError("depth must be at least 1")
    first = 6
    forms = []
    for level in range(1, depth):
        draws = b"/X Do\n" * fanout
        forms.append(_form(draws, b"<< /XObject << /X %d 0 R >> >>" % (first + level)))
    text = b"BT /F1 10 Tf 14 TL 72 800 Td\n" + b"(Nested form text line) Tj T*\n" * fanout + b"ET\n"
    forms.append(_form(text, b"<< /Font << /F1 4 0 R >> >>"))
    return _one_page_pdf(b"q /X Do Q\n", forms)


def repeated_xobject_pdf(draws: int = 40, xobject_bytes: int = 250_000) -> bytes:
    """One page drawing one large text form `draws` times: small file, draws × xobject_bytes to interpret.

    MEASURED_PLACEHOLDER
    """
    lines = []
    size = 0
    number = 0
    while size < xobject_bytes:
        line = b"1 0 0 1 36 %d Tm (Repeated form line %06d, quarterly figures restated) Tj\n" % (
            800 - (number % 70) * 11,
            number,
        )
        lines.append(line)
        size += len(line)
        number += 1
    content = b"BT /F1 9 Tf\n" + b"".join(lines) + b"ET\n"
    form = _form(content, b"<< /Font << /F1 4 0 R >> >>")
    return _one_page_pdf(b"q /X Do Q\n" * draws, [form])


# -- hand-written DOCX -------------------------------------------------------------
_DOCX_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml"'
    b' ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    b"</Types>"
)
_DOCX_PACKAGE_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Target="word/document.xml"'
    b' Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/>'
    b"</Relationships>"
)
_DOCX_DOCUMENT_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"/>'
)
_DOCX_BODY_START = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
)
_DOCX_BODY_END = b"</w:body></w:document>"


def _docx_package(body: Iterable[bytes]) -> bytes:
    """A minimal DOCX around `body` (chunks of w:body content), streamed into the zip."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as package:
        package.writestr("[Content_Types].xml", _DOCX_CONTENT_TYPES)
        package.writestr("_rels/.rels", _DOCX_PACKAGE_RELS)
        package.writestr("word/_rels/document.xml.rels", _DOCX_DOCUMENT_RELS)
        with package.open("word/document.xml", "w") as document:
            document.write(_DOCX_BODY_START)
            for chunk in body:
                document.write(chunk)
            document.write(_DOCX_BODY_END)
    return out.getvalue()


def docx_bomb(paragraphs: int = 1_000_000) -> bytes:
    """A DOCX that passes the zip-bomb checks (size, ratio) but costs python-docx dearly.

    Each paragraph is one run of one character; every 8th holds a pseudo-random digit
    so deflate cannot reach the >200 ratio that the archive check refuses.
    MEASURED_PLACEHOLDER
    """
    rnd = random.Random(paragraphs)
    plain = b"<w:p><w:r><w:t>x</w:t></w:r></w:p>"

    def body() -> Iterator[bytes]:
        for start in range(0, paragraphs, 8):
            block = [plain] * min(8, paragraphs - start)
            block[0] = b"<w:p><w:r><w:t>%d</w:t></w:r></w:p>" % rnd.randrange(10)
            yield b"".join(block)

    return _docx_package(body())
