from rest_framework import serializers

from accounts.models import Role, User
from accounts.serializers import MeOutputSerializer
from config.serializers import StrictInputSerializer

from .models import ApiKey, AuditEntry, Invitation, Organization


def budget_tokens_field():
    return serializers.IntegerField(
        min_value=0, max_value=10**15, required=False, allow_null=True, help_text="Tokens a month; null: no limit."
    )


def budget_cost_field():
    return serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=0,
        required=False,
        allow_null=True,
        help_text="Cost a month, in LLM_PRICES' currency; null: no limit.",
    )


class OrganizationOutputSerializer(serializers.ModelSerializer):
    member_count = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "created_at", "member_count", "monthly_token_budget", "monthly_cost_budget"]
        read_only_fields = fields

    def get_member_count(self, org: Organization) -> int:
        return User.objects.filter(org=org, is_active=True).count()


class OrganizationUpdateInputSerializer(StrictInputSerializer):
    id = serializers.UUIDField(read_only=True)
    slug = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    member_count = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=200, required=False)
    monthly_token_budget = budget_tokens_field()
    monthly_cost_budget = budget_cost_field()


class RegisterInputSerializer(StrictInputSerializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=1024, trim_whitespace=False)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    organization_name = serializers.CharField(max_length=200, required=False, allow_blank=False)
    invitation_token = serializers.CharField(max_length=256, required=False, allow_blank=False)


class RegisterOutputSerializer(serializers.Serializer):
    user = MeOutputSerializer()
    organization = OrganizationOutputSerializer()
    access = serializers.CharField()
    refresh = serializers.CharField()


class RegistrationPendingSerializer(serializers.Serializer):
    detail = serializers.CharField()
    email = serializers.EmailField()


class MemberOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "name",
            "role",
            "is_active",
            "date_joined",
            "monthly_token_budget",
            "monthly_cost_budget",
        ]
        read_only_fields = fields


class MemberUpdateInputSerializer(StrictInputSerializer):
    id = serializers.UUIDField(read_only=True)
    email = serializers.EmailField(read_only=True)
    name = serializers.CharField(read_only=True)
    date_joined = serializers.DateTimeField(read_only=True)
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    is_active = serializers.BooleanField(required=False)
    monthly_token_budget = budget_tokens_field()
    monthly_cost_budget = budget_cost_field()


class InvitationOutputSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "role",
            "status",
            "expires_at",
            "accepted_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_status(self, invitation: Invitation) -> str:
        if invitation.accepted_at is not None:
            return "accepted"
        return "pending" if invitation.is_pending else "expired"


class InvitationCreateInputSerializer(StrictInputSerializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class ApiKeyOutputSerializer(serializers.ModelSerializer):
    created_by = serializers.UUIDField(source="created_by_id", read_only=True)
    status = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "role",
            "scopes",
            "expires_at",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
            "status",
        ]
        read_only_fields = fields

    def get_status(self, key: ApiKey) -> str:
        if key.revoked_at:
            return "revoked"
        return "active" if key.is_usable else "expired"


class ApiKeyCreatedSerializer(ApiKeyOutputSerializer):
    key = serializers.CharField(read_only=True, help_text="The key itself: shown this once, never again.")

    class Meta(ApiKeyOutputSerializer.Meta):
        fields = [*ApiKeyOutputSerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiKeyCreateInputSerializer(StrictInputSerializer):
    name = serializers.CharField(max_length=200)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiKey.Scope.choices),
        min_length=1,
        max_length=2,
        default=lambda: [ApiKey.Scope.READ, ApiKey.Scope.WRITE],
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class AuditEntryOutputSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()
    target = serializers.SerializerMethodField()

    class Meta:
        model = AuditEntry
        fields = ["id", "created_at", "action", "actor", "target", "changes", "ip", "user_agent", "request_id"]
        read_only_fields = fields

    def get_actor(self, entry: AuditEntry) -> dict:
        return {
            "user_id": str(entry.actor_user_id) if entry.actor_user_id else None,
            "api_key_id": str(entry.actor_key_id) if entry.actor_key_id else None,
            "label": entry.actor_label,
        }

    def get_target(self, entry: AuditEntry) -> dict:
        return {"type": entry.target_type, "id": entry.target_id, "label": entry.target_label}


class AuditQuerySerializer(serializers.Serializer):
    action = serializers.CharField(max_length=64, required=False)
    actor = serializers.UUIDField(required=False, help_text="The acting user's id.")
    target_type = serializers.CharField(max_length=64, required=False)
    target_id = serializers.CharField(max_length=64, required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)

    def validate_action(self, value: str) -> str:
        from .audit import ACTIONS

        if value not in ACTIONS:
            raise serializers.ValidationError(f"Unknown action; one of: {', '.join(ACTIONS)}.")
        return value
