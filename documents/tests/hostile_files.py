"""Hostile and layout-heavy fixture files built in the tests: PDF/DOCX bombs, scans, reports."""

from __future__ import annotations

import io
import itertools
import random
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

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
    """One page of 1-2 KB whose text draws multiply through nested forms: fanout**depth lines.

    The page draws form 1 once; form k draws form k+1 `fanout` times; the innermost draws
    a line of text `fanout` times. All the work is inside one page, so a time budget
    checked between pages never fires. pypdf 7.1.1 `page.extract_text()`, measured:
    depth 2: 0.15 s (1,600 lines); depth 3: 6.1 s (64,000 lines, 1.4 M chars, 41 MB RSS);
    depth 4: 19.5 s, 4.3 M chars, 49 MB RSS, and only because pypdf stops after 5,000
    form invocations per page (`xform_maximum_invocations_per_extraction`, with a logged
    warning), i.e. 195,000 of the 2.56 M lines. PDFium, which has no such cap, spends 61 s
    on depth 4 and returns 59 M chars.
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
    """One page drawing one large text form `draws` times: 11 KB, draws × xobject_bytes to interpret.

    Stays under pypdf's cap of 5,000 form invocations, which only bounds the cost at
    5,000 × the form. pypdf 7.1.1 `page.extract_text()`, measured: 1 draw 0.36 s; the
    default 40 draws 20.7 s, 7.0 M chars, 54 MB RSS; 400 draws over 60 s (about 3.5 min
    expected). PDFium: 5.4 s for the default.
    """
    content = bytearray(b"BT /F1 9 Tf\n")
    for number in itertools.count():
        if len(content) >= xobject_bytes:
            break
        y = 800 - (number % 70) * 11
        content += b"1 0 0 1 36 %d Tm (Repeated form line %06d, quarterly figures restated) Tj\n" % (y, number)
    content += b"ET\n"
    form = _form(bytes(content), b"<< /Font << /F1 4 0 R >> >>")
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
    """A DOCX that passes the zip-bomb checks (inflated size, ratio) but costs python-docx dearly.

    Each paragraph is one run of one character; every 8th holds a pseudo-random digit so
    deflate cannot reach the ratio above 200 that the archive check refuses. Measured at the
    default: 224 KB zip, 34.0 MB inflated, word/document.xml ratio 152 (zlib level 9; a
    digit every 12th paragraph would give 168, every 16th 186). python-docx 1.2:
    `Document()` 1.3-1.5 s and 547 MB RSS; then reading each body paragraph's text
    (Paragraph(child).text over body.iterchildren()) 60 s, peak 560 MB, or
    `document.paragraphs` 58 s, peak 736 MB. The text is 1,999,999 characters, just under a
    2,000,000-character limit.
    """
    rnd = random.Random(paragraphs)
    plain = b"<w:p><w:r><w:t>x</w:t></w:r></w:p>"

    def body() -> Iterator[bytes]:
        for start in range(0, paragraphs, 8):
            block = [plain] * min(8, paragraphs - start)
            block[0] = b"<w:p><w:r><w:t>%d</w:t></w:r></w:p>" % rnd.randrange(10)
            yield b"".join(block)

    return _docx_package(body())


def _table(rows: Iterable[bytes], columns: int = 1) -> bytes:
    return b"<w:tbl><w:tblGrid>%s</w:tblGrid>%s</w:tbl>" % (b"<w:gridCol/>" * columns, b"".join(rows))


def _text_paragraph(text: str) -> bytes:
    return b"<w:p><w:r><w:t>%s</w:t></w:r></w:p>" % text.encode()


def docx_nested_tables(depth: int) -> bytes:
    """A table in a cell of a table ... `depth` levels deep, each cell saying "level N".

    Not a way to make python-docx slow: 83 levels open and read in milliseconds, and
    from 84 levels the XML is deeper than libxml2's limit of 256 without XML_PARSE_HUGE,
    so parsing fails (XMLSyntaxError "Excessive depth"). Useful for where nested text
    goes: python-docx's `cell.text` reads only the cell's own paragraphs, not those of
    the tables inside it.
    """
    content = _text_paragraph(f"level {depth}")
    for level in range(depth - 1, 0, -1):
        content = _text_paragraph(f"level {level}") + _table([b"<w:tr><w:tc>%s</w:tc></w:tr>" % content]) + b"<w:p/>"
    return _docx_package([_table([b"<w:tr><w:tc>%s</w:tc></w:tr>" % content])])


def docx_vertical_merge_table(rows: int = 900) -> bytes:
    """A 1.4 KB DOCX: one column merged vertically over `rows` rows.

    python-docx 1.2 `row.cells` finds the content of a continued merge by recursing to the
    row above, two XPath queries a step, so reading every row is quadratic: measured 55 s
    for the default 900 rows (28 MB RSS). From about 990 rows it raises RecursionError
    (1,000 rows: after 72 s), an exception a reader catching only parse errors lets
    through.
    """
    first = b'<w:tr><w:tc><w:tcPr><w:vMerge w:val="restart"/></w:tcPr>%s</w:tc></w:tr>' % _text_paragraph("merged")
    rest = b"<w:tr><w:tc><w:tcPr><w:vMerge/></w:tcPr><w:p/></w:tc></w:tr>"
    return _docx_package([_table([first, rest * (rows - 1)])])


def docx_wide_span_table(span: int = 1_000_000) -> bytes:
    """A 1.2 KB DOCX whose single cell claims to span `span` grid columns.

    python-docx 1.2 `row.cells` returns the cell once per spanned column and
    `cell.text` is read each time: measured 7.9 s for 100,000 and 71 s, 105 MB RSS and
    5 M characters of text for the default 1,000,000. 100,000,000 reached 940 MB before
    a 60 s timeout.
    """
    cell = b'<w:tc><w:tcPr><w:gridSpan w:val="%d"/></w:tcPr>%s</w:tc>' % (span, _text_paragraph("wide"))
    return _docx_package([_table([b"<w:tr>%s</w:tr>" % cell])])


# -- scans: text only as pixels ----------------------------------------------------
SCAN_DPI = 300
_SCAN_SIZE = (2480, 3508)  # A4 at 300 dpi
_SCAN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
_SCAN_FONT_PX = 34  # ascent + descent ≈ 41 px
_SCAN_MARGIN = 200
_SCAN_PITCH = 64


def _scan_image(lines: list[str]) -> Image.Image:
    """Black text on a white A4 page at 300 dpi, DejaVu Sans when installed (Debian), else PIL's own font.

    The basic layout engine draws no ligatures, so "fi" stays two glyphs for OCR.
    """
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.truetype(_SCAN_FONT, _SCAN_FONT_PX, layout_engine=ImageFont.Layout.BASIC)
    except OSError:
        font = ImageFont.load_default(size=_SCAN_FONT_PX)
    image = Image.new("L", _SCAN_SIZE, 255)
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((_SCAN_MARGIN, _SCAN_MARGIN + number * _SCAN_PITCH), line, fill=0, font=font)
    return image


def _encode_scan(lines: list[str], format: str, **options) -> bytes:
    out = io.BytesIO()
    _scan_image(lines).save(out, format=format, dpi=(SCAN_DPI, SCAN_DPI), **options)
    return out.getvalue()


def scanned_png(lines: list[str]) -> bytes:
    return _encode_scan(lines, "PNG", optimize=True)


def scanned_jpeg(lines: list[str]) -> bytes:
    return _encode_scan(lines, "JPEG", quality=85)


def scanned_tiff(lines: list[str]) -> bytes:
    return _encode_scan(lines, "TIFF", compression="tiff_lzw")


def scanned_pdf(lines: list[str], pages: int = 1) -> bytes:
    """An image-only PDF, as a scanner makes: every page is the same full-page picture of `lines`, no text layer.

    At most about 48 lines fit; more fall off the page.
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    picture = ImageReader(_scan_image(lines))
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    for _ in range(pages):
        pdf.drawImage(picture, 0, 0, width=A4[0], height=A4[1])
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


# -- a report: running header and footer, wrapped and hyphenated prose -------------
REPORT_HEADER = "ACME Corporation — Annual Report 2025"
REPORT_FOOTER = "Page {page} of {pages}"
REPORT_HEADINGS = ["1. Overview of the Year", "2. Operations and Markets", "3. Sustainability and Outlook"]
REPORT_PARAGRAPHS = [
    "The year under review was one of considerable transformation for the group. Revenue rose to 4.2 billion "
    "euros, an increase of eleven percent on the previous year, while operating profit improved faster still "
    "thanks to disciplined procurement and the consolidation of our manufacturing footprint. The board "
    "believes that these results demonstrate the resilience of a diversified portfolio in an environment "
    "that remained challenging throughout the first half.",
    "Our international business contributed the larger part of this growth. Demand in Southeast Asia and "
    "Latin America was particularly strong, and the distribution agreements concluded in the spring allowed "
    "us to reach customers who had previously been served only through intermediaries. At the same time we "
    "withdrew from two unprofitable markets, a decision that reduced headline revenue slightly but "
    "strengthened the overall margin considerably.",
    "Cash generation remained a priority. Free cash flow reached 610 million euros, which enabled the "
    "company to reduce net debt by a third and to propose a dividend of 1.45 euros per share, the highest in "
    "our history. Shareholders will be asked to approve this proposal at the general meeting in May, "
    "together with the renewal of the authorisation to repurchase shares.",
    "The management team was strengthened during the year. A new chief operating officer joined in March "
    "with responsibility for manufacturing, logistics and procurement, and the finance organisation was "
    "reorganised around three regional hubs. These changes simplify decision making and bring "
    "accountability closer to the markets in which we compete.",
    "Employees across the group again showed remarkable commitment. Absenteeism fell to its lowest level in "
    "a decade, participation in the employee share plan exceeded forty percent for the first time, and the "
    "annual engagement survey recorded a year-on-year improvement in every region. We thank every "
    "colleague for their contribution to a memorable year.",
    "Production volumes increased by nine percent, supported by the commissioning of the new assembly line "
    "in Rotterdam and by productivity programmes at our existing plants. Unplanned downtime decreased "
    "substantially after the introduction of predictive maintenance, which uses sensor data to schedule "
    "interventions before failures occur.",
    "Investment in infrastructure continued at a measured pace. Capital expenditure amounted to 290 million "
    "euros, of which roughly half was directed towards automation and digitalisation. The remainder "
    "financed the expansion of warehousing capacity in Poland and the modernisation of our laboratories, "
    "which are central to the long-term competitiveness of the product range.",
    "Research and development expenditure rose to 3.8 percent of revenue. The laboratories filed "
    "seventy-two patent applications, and four new product families reached the market, among them a "
    "lightweight composite housing that reduces transport emissions for our customers. Collaboration with "
    "universities was extended through two additional doctoral programmes.",
    "Competition intensified in the industrial segment, where several competitors lowered prices in an "
    "attempt to regain market share. We chose not to follow this strategy across the board; instead we "
    "concentrated on service quality, delivery reliability and technical support, which customers "
    "consistently rate as the decisive factors in their purchasing decisions.",
    "The consumer segment benefited from the successful relaunch of the household range. Online sales "
    "doubled, and the proportion of revenue generated through our own digital channels reached eighteen "
    "percent. Marketing expenditure was redirected from traditional advertising towards targeted campaigns "
    "whose effectiveness can be measured precisely.",
    "Environmental performance improved markedly. Greenhouse gas emissions from our own operations fell by "
    "fourteen percent, water consumption per unit produced declined for the fifth consecutive year, and "
    "the share of electricity purchased from renewable sources rose to seventy-one percent. These figures "
    "were verified by an independent assurance provider.",
    "Sustainability is now embedded in the remuneration of senior management. From the coming year, a "
    "fifth of the variable compensation of the executive committee will depend on measurable progress "
    "towards our climate targets, on safety indicators and on the diversity of leadership teams, in line "
    "with the expectations expressed by our institutional investors.",
    "Social responsibility extends beyond our own sites. The supplier code of conduct was revised, and more "
    "than three hundred suppliers were assessed against environmental, labour and governance criteria. "
    "Where shortcomings were identified, we agreed corrective plans rather than ending the relationship "
    "immediately, because lasting improvement requires cooperation.",
    "Looking ahead, the board expects moderate growth in revenue and a further improvement in profitability. "
    "Uncertainty remains considerable, particularly with regard to energy prices, interest rates and "
    "international trade policy, but the measures taken over the past two years have made the organisation "
    "more agile and better prepared for an unpredictable environment.",
    "We enter the new year with a strong balance sheet, a clear strategy and a committed workforce. The "
    "board and the management team are confident that the group will continue to create value for "
    "customers, employees, shareholders and the communities in which it operates, and we thank all our "
    "stakeholders for their continued trust.",
]
_REPORT_SECTION_STARTS = {0: 0, 5: 1, 10: 2}  # paragraph index -> heading index
# Break points for words this text may need to split; other long words split between two consonants.
_HYPHENATION = {
    "international": "inter-national",
    "infrastructure": "infra-structure",
    "manufacturing": "manu-facturing",
    "transformation": "trans-formation",
    "responsibility": "responsi-bility",
    "sustainability": "sustain-ability",
    "organisation": "organi-sation",
    "environmental": "environ-mental",
    "commissioning": "commis-sioning",
    "digitalisation": "digital-isation",
    "considerable": "consider-able",
    "considerably": "consider-ably",
}
_VOWELS = set("aeiouy")
_ONSETS = {"bl", "br", "ch", "ck", "cl", "cr", "dr", "fl", "fr", "gh", "gl", "gr", "ph", "pl", "pr", "qu"}
_ONSETS |= {"sc", "sh", "sk", "sm", "sp", "st", "th", "tr", "wh", "wr"}


def _break_points(word: str) -> list[int]:
    """Offsets at which `word` may take a hyphen: listed words as listed, others before a consonant-vowel pair."""
    letters = word.rstrip(".,;:")
    lower = letters.lower()
    if len(letters) < 7 or not letters.isalpha():
        return []
    if lower in _HYPHENATION:
        return [_HYPHENATION[lower].index("-")]
    return [
        i
        for i in range(3, len(lower) - 3)
        if lower[i] not in _VOWELS
        and lower[i + 1] in _VOWELS
        and (lower[i - 1] in _VOWELS or lower[i - 1 : i + 1] not in _ONSETS)
    ]


def _wrap(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """Greedy line breaking; a word that does not fit is hyphenated at its last break point that does."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if measure(candidate) <= width:
            line = candidate
            continue
        for point in reversed(_break_points(word)):
            head = f"{line} {word[:point]}-" if line else f"{word[:point]}-"
            if measure(head) <= width:
                lines.append(head)
                line = word[point:]
                break
        else:
            lines.append(line)
            line = word
    lines.append(line)
    return lines


def _report_blocks(width: float, measure: Callable[[str], float]) -> Iterator[tuple[str | None, list[str]]]:
    """(heading or None, wrapped lines) for each paragraph, from the first again after the last."""
    for index in itertools.count():
        paragraph = index % len(REPORT_PARAGRAPHS)
        section = _REPORT_SECTION_STARTS.get(paragraph)
        heading = REPORT_HEADINGS[section] if section is not None else None
        yield heading, _wrap(REPORT_PARAGRAPHS[paragraph], width, measure)


def report_pdf(pages: int = 5) -> bytes:
    """A report for layout-aware extraction: header and "Page n of N" footer on every page, hyphenated prose.

    Three paragraphs a page, in the order of REPORT_PARAGRAPHS (so the default five pages
    hold each exactly once; more pages start again from the first). Each is wrapped by
    hand to the text width and spans several lines; a long word that overflows a line is
    split with a hyphen ("manu-" / "facturing"), while compounds such as "year-on-year"
    are never split. Paragraphs are set apart by a larger gap than the line spacing, and a
    heading (REPORT_HEADINGS) opens each section. Drawn in reading order: header, body,
    footer.
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfgen import canvas

    page_width, page_height = A4
    margin, size, leading, gap = 72.0, 12.0, 16.0, 14.0
    width = page_width - 2 * margin
    blocks = _report_blocks(width, lambda line: stringWidth(line, "Helvetica", size))

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.setTitle(REPORT_HEADER)
    for page in range(1, pages + 1):
        pdf.setFont("Helvetica", 9)
        pdf.drawString(margin, page_height - 50, REPORT_HEADER)
        pdf.line(margin, page_height - 56, page_width - margin, page_height - 56)
        y = page_height - 100
        for heading, lines in itertools.islice(blocks, 3):
            if heading:
                pdf.setFont("Helvetica-Bold", 14)
                pdf.drawString(margin, y, heading)
                y -= 2 * leading
            pdf.setFont("Helvetica", size)
            for line in lines:
                pdf.drawString(margin, y, line)
                y -= leading
            y -= gap
        if y < 60:
            raise AssertionError("report paragraphs overflow the page")
        pdf.setFont("Helvetica", 9)
        pdf.drawCentredString(page_width / 2, 40, REPORT_FOOTER.format(page=page, pages=pages))
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()
