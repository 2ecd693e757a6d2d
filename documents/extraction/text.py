"""Plain text: decoding legacy encodings, normalisation, length."""

from __future__ import annotations

import re
import unicodedata

from config.errors import PayloadTooLarge

from .errors import ExtractionFailed

# C0 controls except tab, newline, carriage return; DEL; unpaired surrogates.
_UNWANTED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def normalize_text(text: str) -> str:
    """NFC, no NUL/C0 controls (tab, LF, CR kept), no unpaired surrogates, no BOM."""
    text = _UNWANTED.sub("", text)
    text = unicodedata.normalize("NFC", text)
    return text.lstrip("\ufeff")


def check_length(text: str, max_chars: int) -> None:
    if len(text) > max_chars:
        raise PayloadTooLarge(
            f"The document has {len(text)} characters; the limit is {max_chars}.", "document_too_long"
        )


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
