"""Serializer behaviour shared by every input serializer of the API, and the output
helpers of the hand-built (hot-path) representations."""

from rest_framework import serializers


def api_datetime(moment) -> str | None:
    """A datetime as DRF's DateTimeField outputs it (ISO 8601, UTC as Z); None stays None."""
    if moment is None:
        return None
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def api_uuid(value) -> str | None:
    """A UUID as DRF's UUIDField outputs it (hyphenated string); None stays None."""
    return None if value is None else str(value)


class StrictInputSerializer(serializers.Serializer):
    """Rejects unknown keys with a 400 naming them, instead of ignoring them.

    Text fields accept only JSON strings (no silent 5 → "5").
    Read-only fields that the serializer knows (ids, timestamps, `org`, ...) are
    still ignored, so a client may send back an object it received; anything
    the serializer does not know is most likely a typo or a mass-assignment
    attempt and is refused.
    """

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": [f"Expected a JSON object, got {type(data).__name__}."]},
                code="invalid",
            )
        unknown = sorted(str(key) for key in data if key not in self.fields)
        if unknown:
            raise serializers.ValidationError({key: ["Unknown field."] for key in unknown}, code="unknown_field")
        wrong_type = {
            name: ["Not a valid string."]
            for name, field in self.fields.items()
            if isinstance(field, serializers.CharField)
            and not field.read_only
            and name in data
            and data[name] is not None
            and not isinstance(data[name], str)
        }
        if wrong_type:
            # DRF would coerce 5 into "5"; a wrong JSON type is a client bug worth reporting.
            raise serializers.ValidationError(wrong_type, code="invalid")
        return super().to_internal_value(data)


class StrictModelSerializer(StrictInputSerializer, serializers.ModelSerializer):
    pass
