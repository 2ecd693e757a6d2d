from rest_framework import serializers

from config.serializers import StrictInputSerializer

from .models import Integration, WebhookDelivery, WebhookSubscription


class IntegrationOutputSerializer(serializers.ModelSerializer):
    """Never a token or secret: only what an admin needs to recognise the connection."""

    class Meta:
        model = Integration
        fields = [
            "id",
            "provider",
            "name",
            "account_name",
            "scopes",
            "status",
            "status_detail",
            "created_at",
            "last_used_at",
        ]
        read_only_fields = fields


class ProviderSerializer(serializers.Serializer):
    name = serializers.CharField()
    display_name = serializers.CharField()
    capabilities = serializers.ListField(child=serializers.CharField())
    oauth = serializers.BooleanField()
    configured = serializers.BooleanField()


class WebhookConfigSerializer(StrictInputSerializer):
    url = serializers.CharField(max_length=2048)
    secret = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class WebhookCreateInputSerializer(StrictInputSerializer):
    provider = serializers.ChoiceField(choices=["webhook"])
    name = serializers.CharField(max_length=200)
    config = WebhookConfigSerializer()


class AuthorizeInputSerializer(StrictInputSerializer):
    integration_id = serializers.UUIDField(required=False, allow_null=True, help_text="Reconnect this integration.")


class AuthorizeOutputSerializer(serializers.Serializer):
    authorization_url = serializers.URLField()


class ImportInputSerializer(StrictInputSerializer):
    items = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, allow_empty=False, max_length=500
    )
    query = serializers.CharField(max_length=500, required=False, allow_blank=False)

    def validate(self, attrs):
        if bool(attrs.get("items")) == bool(attrs.get("query")):
            raise serializers.ValidationError("Give either items (a list of ids) or query.", code="items_or_query")
        return attrs


class UrlImportInputSerializer(StrictInputSerializer):
    url = serializers.CharField(max_length=2048)
    title = serializers.CharField(max_length=500, required=False, allow_blank=True)


class WebhookSubscriptionOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookSubscription
        fields = ["id", "url", "event_types", "is_active", "disabled_reason", "consecutive_failures", "created_at"]
        read_only_fields = fields


class WebhookSubscriptionCreatedSerializer(WebhookSubscriptionOutputSerializer):
    secret = serializers.CharField(read_only=True, help_text="Signs every delivery: shown this once.")

    class Meta(WebhookSubscriptionOutputSerializer.Meta):
        fields = [*WebhookSubscriptionOutputSerializer.Meta.fields, "secret"]
        read_only_fields = fields


def _event_types_field(**kwargs):
    from .event_webhooks import EVENT_TYPES

    return serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES), min_length=1, max_length=len(EVENT_TYPES), **kwargs
    )


class WebhookSubscriptionInputSerializer(StrictInputSerializer):
    url = serializers.CharField(max_length=2000)
    event_types = _event_types_field()
    is_active = serializers.BooleanField(required=False)


class WebhookDeliveryOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "last_duration_ms",
            "delivered_at",
            "created_at",
        ]
        read_only_fields = fields
