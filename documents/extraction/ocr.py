"""Text from scanned pages and images: OCRmyPDF and Tesseract (Debian packages).

`ocrmypdf` rasterizes and reads a scanned PDF (its `--sidecar` is the text, pages
separated by form feeds); `tesseract` reads images (PNG, JPEG, TIFF, every frame of a
TIFF). OCR_LANGUAGES chooses the Tesseract languages ("eng", "eng+deu"). Both run in
the sandboxed child, so its limits and its process group bound them too. Where they are
not installed (a bare `make run`), such a file fails with `ocr_unavailable`, naming the
package to install.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

from .errors import ExtractionFailed

_LANGUAGES = re.compile(r"^[a-z_]{3,8}(\+[a-z_]{3,8})*$")
# One thread per OCR process: the sandbox's CPU budget is per process, and the machine's
# cores belong to more than one file.
_ENV = {**os.environ, "OMP_THREAD_LIMIT": "1"}


class OcrUnavailable(ExtractionFailed):
    default_code = "ocr_unavailable"


def _require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise OcrUnavailable(
            f"This file needs OCR, and {tool} is not installed: install the Debian package {package} "
            "(and tesseract-ocr-<language> for OCR_LANGUAGES).",
            "ocr_unavailable",
        )
    return path


def _languages(languages: str) -> str:
    languages = (languages or "eng").strip().lower()
    if not _LANGUAGES.match(languages):
        raise ExtractionFailed(f"OCR_LANGUAGES {languages!r} is not a list like eng+deu.", "ocr_unavailable")
    return languages


def _run(command: list[str], what: str) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, env=_ENV, check=False)  # noqa: S603 - our own command line
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", errors="replace").strip().splitlines()
        if any("Failed loading language" in line or "language data" in line.lower() for line in message):
            raise OcrUnavailable(
                f"The OCR language data for {command[-1] if what == 'image' else 'OCR_LANGUAGES'} is missing: install "
                "tesseract-ocr-<language>.",
                "ocr_unavailable",
            )
        detail = message[-1][:200] if message else f"exit {result.returncode}"
        raise ExtractionFailed(f"OCR of the {what} failed ({detail}).", "ocr_failed")
    return result


def announce(pages: int, seconds_per_page: float) -> None:
    """OCR of `pages` pages is next: in the sandbox, the file gets that much more time."""
    from documents import sandbox_child

    sandbox_child.request_time(pages * seconds_per_page)


_SKIPPED = re.compile(r"^\[OCR skipped on page\(s\) (\d+)(?:-(\d+))?\]$")


def pdf_pages(path: str, *, languages: str, pages: list[int]) -> dict[int, str]:
    """The OCR'd text of the given (1-based) pages of a PDF, by page number."""
    tool = _require("ocrmypdf", "ocrmypdf")
    _require("tesseract", "tesseract-ocr")
    with tempfile.TemporaryDirectory(prefix="precis-ocr-") as folder:
        sidecar = os.path.join(folder, "text.txt")
        _run(
            [tool, "--quiet", "--force-ocr", "--jobs", "1", "--optimize", "0", "--output-type", "pdf",
             "--pages", ",".join(map(str, pages)), "--sidecar", sidecar, "-l", _languages(languages),
             path, os.path.join(folder, "out.pdf")],
            "PDF",
        )  # fmt: skip
        with open(sidecar, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    # Pages end with a form feed; a run of pages left out is one "[OCR skipped on page(s) 4-6]".
    recognized: dict[int, str] = {}
    number = 1
    for part in text.split("\f"):
        skipped = _SKIPPED.match(part.strip())
        if skipped:
            number = int(skipped.group(2) or skipped.group(1)) + 1
            continue
        recognized[number] = part
        number += 1
    return recognized


def image_text(path: str, *, languages: str) -> tuple[list[str], int]:
    """The text of an image (every page of a multi-page TIFF), and how many pages it had."""
    tool = _require("tesseract", "tesseract-ocr")
    result = _run([tool, path, "stdout", "-l", _languages(languages)], "image")
    text = result.stdout.decode("utf-8", errors="replace")
    pages = [page for page in text.split("\f") if page.strip()] or [text]
    return pages, len(pages)
