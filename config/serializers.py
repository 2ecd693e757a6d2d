"""Serializer behaviour shared by every input serializer of the API."""

from rest_framework import serializers


class StrictInputSerializer(serializers.Serializer):
    """Rejects unknown keys with a 400 naming them, instead of ignoring them.

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
        return super().to_internal_value(data)


class StrictModelSerializer(StrictInputSerializer, serializers.ModelSerializer):
    pass
