"""Fixtures shared by the realtime tests."""

import pytest

from conftest import make_tenant


@pytest.fixture
def org_a(transactional_db):
    return make_tenant("Acme")


@pytest.fixture
def org_b(transactional_db):
    return make_tenant("Globex")
