"""Every documents test stores files under its own temporary MEDIA_ROOT."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def media(settings, tmp_path_factory) -> Path:
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")  # not under tmp_path: tests walk that
    return settings.MEDIA_ROOT
