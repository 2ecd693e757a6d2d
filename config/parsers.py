"""Request parsing that refuses what the database or the contract cannot take.

- bodies larger than MAX_JSON_BODY_BYTES → 413, read in bounded chunks (an
  oversized body is never buffered whole);
- bytes that are not UTF-8, or text that is not JSON (incl. NaN/Infinity) → 400;
- strings holding NUL or unpaired surrogates (valid JSON, but PostgreSQL text
  cannot store them) → 400 naming the field.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser, MultiPartParser

from .errors import PayloadTooLarge

_CHUNK = 64 * 1024


def _read_bounded(stream, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(
                f"The request body exceeds the limit of {limit} bytes.",
                "body_too_large",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def find_unstorable_text(value: Any, path: str = "") -> tuple[str, str] | None:
    """Return (path, reason) of the first string with NUL or a lone surrogate."""
    if isinstance(value, str):
        if "\x00" in value:
            return path, "must not contain NUL (\\u0000) characters"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path, "must not contain unpaired surrogate characters"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = find_unstorable_text(key, path) or find_unstorable_text(item, f"{path}.{key}" if path else key)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_unstorable_text(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        if stream is None:
            return {}
        raw = _read_bounded(stream, settings.MAX_JSON_BODY_BYTES)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(
                f"The request body is not valid UTF-8 (byte {exc.start}).",
                "invalid_utf8",
            ) from None
        if text.startswith("\ufeff"):
            text = text[1:]
        try:
            data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {exc}", "parse_error") from None
        found = find_unstorable_text(data)
        if found:
            attr, reason = found
            raise ValidationError(
                {attr or "non_field_errors": [f"This value {reason}."]},
                code="invalid_characters",
            )
        return data


class SafeMultiPartParser(MultiPartParser):
    """Multipart bodies whose abuse is a client error in the contract's shape, not a 500:
    more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields → 400 `too_many_fields`; a form field
    (not a file) over DATA_UPLOAD_MAX_MEMORY_SIZE → 413 `field_too_large`; a body that is
    not multipart → 400 `malformed_multipart`. Form values are checked like JSON strings
    (NUL, unpaired surrogates → 400 `invalid_characters`)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            parsed = super().parse(stream, media_type, parser_context)
        except TooManyFieldsSent:
            raise ParseError(
                f"The form has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields.", "too_many_fields"
            ) from None
        except RequestDataTooBig:
            raise PayloadTooLarge(
                f"A form field exceeds {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes; send files as file parts.",
                "field_too_large",
            ) from None
        except ParseError as exc:
            raise ParseError(f"The multipart body could not be read ({exc.detail}).", "malformed_multipart") from None
        found = find_unstorable_text(dict(parsed.data.lists()))
        if found:
            attr, reason = found
            raise ValidationError({attr.split(".")[0]: [f"This value {reason}."]}, code="invalid_characters")
        return parsed
