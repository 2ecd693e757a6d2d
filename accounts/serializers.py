from rest_framework import serializers

from config.serializers import StrictInputSerializer

from .models import User


class LoginInputSerializer(StrictInputSerializer):
    email = serializers.CharField(max_length=254, trim_whitespace=True)
    password = serializers.CharField(max_length=1024, trim_whitespace=False)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class RefreshInputSerializer(StrictInputSerializer):
    refresh = serializers.CharField(max_length=4096)


class EmailInputSerializer(StrictInputSerializer):
    email = serializers.EmailField(max_length=254)


class TokenInputSerializer(StrictInputSerializer):
    token = serializers.CharField(max_length=1024)


class PasswordResetConfirmInputSerializer(StrictInputSerializer):
    token = serializers.CharField(max_length=1024)
    password = serializers.CharField(max_length=1024, trim_whitespace=False)


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class EmailVerifiedSerializer(serializers.Serializer):
    email = serializers.EmailField()
    email_verified = serializers.BooleanField()


class OrganizationBriefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    slug = serializers.CharField()


class MeOutputSerializer(serializers.ModelSerializer):
    organization = OrganizationBriefSerializer(source="org", read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "email_verified", "name", "role", "organization", "date_joined"]
        read_only_fields = fields


class MeUpdateInputSerializer(StrictInputSerializer):
    # Fields a user sees on themselves but may not change here; ignored if sent back.
    id = serializers.UUIDField(read_only=True)
    email = serializers.EmailField(read_only=True)
    email_verified = serializers.BooleanField(read_only=True)
    role = serializers.CharField(read_only=True)
    organization = serializers.JSONField(read_only=True)
    date_joined = serializers.DateTimeField(read_only=True)

    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    current_password = serializers.CharField(max_length=1024, required=False, trim_whitespace=False)
    new_password = serializers.CharField(max_length=1024, required=False, trim_whitespace=False)
