"""Timestamps come back exactly as with Django's own loader, through the C parser."""

import datetime as dt

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django_scopes import scopes_disabled
from model_bakery import baker
from psycopg.pq import Format

from config.postgres import TIMESTAMPTZ_OID

pytestmark = pytest.mark.django_db

VALUES = [
    "2024-01-01 00:00:00+00",
    "2024-02-29 23:59:59.999999+00",
    "1999-12-31 12:00:00.5+05:30",  # another offset: the same instant, in UTC
    "2038-01-19 03:14:08.000001-08",
    "0001-01-01 00:00:00+00",
]
SQL = "SELECT " + ", ".join(f"'{v}'::timestamptz" for v in VALUES)


def test_every_new_connection_reads_timestamptz_with_our_loader():
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
    assert loader.__module__ == "config.postgres"
    assert loader.timezone == connection.timezone == dt.UTC


def test_values_equal_djangos_loader():
    with connection.cursor() as cursor:
        cursor.execute(SQL)
        ours = cursor.fetchone()
    register_tzloader(connection.timezone, connection.connection)
    try:
        with connection.cursor() as cursor:
            cursor.execute(SQL)
            djangos = cursor.fetchone()
    finally:
        connection.close()  # the next test gets a connection set up as usual
    assert ours == djangos
    assert [v.tzinfo for v in ours] == [dt.UTC] * len(VALUES)
    assert ours[2] == dt.datetime(1999, 12, 31, 6, 30, 0, 500000, tzinfo=dt.UTC)


def test_the_orm_returns_aware_utc_datetimes():
    org = baker.make("organizations.Organization")
    document = baker.make("documents.Document", org=org, created_at=dt.datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=dt.UTC))
    with scopes_disabled():
        loaded = type(document).unscoped_objects.get(pk=document.pk)
    assert loaded.created_at == dt.datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=dt.UTC)
    assert loaded.created_at.tzinfo is dt.UTC
