"""Stored realtime events, for replay after a reconnect (bounded retention)."""

from django.db import models

from organizations.models import TenantModel


class StoredEvent(TenantModel):
    """One published event. `seq` counts the org's events without gaps, in commit
    order; the envelope's `id` is `event_id`."""

    id = models.BigAutoField(primary_key=True)
    seq = models.BigIntegerField()
    event_id = models.UUIDField(unique=True)
    type = models.CharField(max_length=32)
    data = models.JSONField()
    # The job's creator for job events (who may see it besides admins); NULL: the whole org.
    user_id = models.UUIDField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        constraints = [models.UniqueConstraint(fields=["org", "seq"], name="event_unique_org_seq")]
        indexes = [models.Index(fields=["created_at"], name="event_created")]

    def __str__(self) -> str:
        return f"{self.type} #{self.seq}"
