"""LLM providers: `get_provider(name)`; `available()` lists what this deployment offers."""

from __future__ import annotations

from django.conf import settings

from .base import Completion, LLMError, Provider, SummarizeOptions
from .local import LocalProvider
from .openai import OpenAICompatibleProvider, OpenAIConfig

__all__ = ["Completion", "LLMError", "Provider", "SummarizeOptions", "available", "get_provider", "io_bound"]


def available() -> list[str]:
    """`local` always; `openai` once LLM_BASE_URL is configured with a key or is a local server."""
    names = ["local"]
    if settings.LLM_API_KEY or settings.LLM_PROVIDER == "openai":
        names.append("openai")
    return names


def io_bound(name: str | None = None) -> bool:
    """Whether this provider's jobs wait on the network (the `llm` queue) or use the CPU."""
    return (name or settings.LLM_PROVIDER) != "local"


def get_provider(name: str | None = None) -> Provider:
    name = name or settings.LLM_PROVIDER
    if name == "local":
        return LocalProvider()
    if name == "openai":
        return OpenAICompatibleProvider(
            OpenAIConfig(
                base_url=settings.LLM_BASE_URL,
                api_key=settings.LLM_API_KEY,
                model=settings.LLM_MODEL,
                timeout_s=settings.LLM_TIMEOUT_S,
                context_tokens=settings.LLM_CONTEXT_TOKENS,
                max_output_tokens=settings.LLM_MAX_OUTPUT_TOKENS,
            )
        )
    raise ValueError(f"unknown LLM provider {name!r}")
