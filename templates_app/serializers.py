from rest_framework import serializers

from config.serializers import StrictInputSerializer
from summaries.formats import FAVOURS, FORMAT_CHOICES

from .models import Template


class TemplateOutputSerializer(serializers.ModelSerializer):
    is_system = serializers.BooleanField(read_only=True)
    created_by = serializers.UUIDField(source="created_by_id", read_only=True, allow_null=True)

    class Meta:
        model = Template
        fields = [
            "id",
            "name",
            "description",
            "body",
            "format",
            "default_max_words",
            "favour",
            "is_system",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class TemplateInputSerializer(StrictInputSerializer):
    id = serializers.UUIDField(read_only=True)
    is_system = serializers.BooleanField(read_only=True)
    created_by = serializers.UUIDField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    body = serializers.CharField(max_length=50_000, trim_whitespace=False)
    format = serializers.ChoiceField(choices=FORMAT_CHOICES, required=False, default="prose")
    default_max_words = serializers.IntegerField(min_value=10, max_value=2000, required=False, default=150)
    favour = serializers.ListField(
        child=serializers.ChoiceField(choices=FAVOURS), required=False, default=list, max_length=len(FAVOURS)
    )

    def validate_favour(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class PlaceholderSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
