"""Timestamps read through psycopg's C parser.

Django registers its own `timestamptz` loader on every PostgreSQL connection so that
values come back with the connection's tzinfo (UTC). It subclasses psycopg's
pure-Python loader, which parses each value with a regular expression: about 3 µs a
value, 7 % of the server's CPU on a 50-row document list page (docs/benchmarks.md).
This loader keeps Django's contract (a class attribute `timezone`, which Django's
create_cursor compares, and `replace(tzinfo=…)`: the session TimeZone is Django's) and
delegates the parsing to the loader psycopg registers by default: the C one with
psycopg[binary] or psycopg[c] (a final type, hence a wrapper and not a subclass).
"""

from __future__ import annotations

import datetime as dt
import functools

import psycopg
from psycopg.adapt import Loader
from psycopg.pq import Format

TIMESTAMPTZ_OID = psycopg.adapters.types["timestamptz"].oid


@functools.cache
def timestamptz_loader(tz: dt.tzinfo | None) -> type:
    parser = psycopg.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)  # C when compiled (a final type)

    class TimestamptzLoader(Loader):
        timezone = tz  # read by Django's create_cursor to decide whether to register its own

        def __init__(self, oid: int, context=None):
            super().__init__(oid, context)
            self._parse = parser(oid, context).load

        def load(self, data):
            return self._parse(data).replace(tzinfo=tz)

    return TimestamptzLoader


def use_fast_timestamptz_loader(sender, connection, **kwargs) -> None:
    """`connection_created` receiver: swap Django's loader on the new connection."""
    if connection.vendor == "postgresql" and hasattr(connection.connection, "adapters"):  # psycopg 3
        connection.connection.adapters.register_loader("timestamptz", timestamptz_loader(connection.timezone))
