"""Fixtures shared by the summaries tests."""

import pytest

from summaries.providers import get_provider


@pytest.fixture
def provider(fake_llm, settings):
    """The OpenAI-compatible provider against the loopback LLM server: 1 s timeout, 3 retries."""
    settings.LLM_TIMEOUT_S = 1
    settings.LLM_MAX_RETRIES = 3
    settings.LLM_MODEL = "fake-model"
    return get_provider("openai")
