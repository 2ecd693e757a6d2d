from rest_framework import serializers

from config.serializers import StrictInputSerializer

from .models import Template


class TemplateOutputSerializer(serializers.ModelSerializer):
    is_system = serializers.BooleanField(read_only=True)
    created_by = serializers.UUIDField(source="created_by_id", read_only=True, allow_null=True)

    class Meta:
        model = Template
        fields = ["id", "name", "description", "body", "is_system", "created_by", "created_at", "updated_at"]
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


class PlaceholderSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
