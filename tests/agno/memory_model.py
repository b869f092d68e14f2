"""A deterministic agno Model for tests: no network, no API key, answers from the conversation.

It answers "What was my last question?" with the previous user message it was given (so it
can only answer when agno loaded the history from storage) and anything else with an echo.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from agno.models.base import Model
from agno.models.message import Message
from agno.models.response import ModelResponse

NO_HISTORY = "I do not know your last question."


def reply_to(messages: list[Message]) -> str:
    user_texts = [str(m.content) for m in messages if m.role == "user" and m.content is not None]
    question = user_texts[-1] if user_texts else ""
    if "last question" in question.lower():
        earlier = user_texts[:-1]
        return f"Your last question was: {earlier[-1]}" if earlier else NO_HISTORY
    return f"Answer to: {question}"


@dataclass
class MemoryModel(Model):
    id: str = "memory-model"
    name: str = "MemoryModel"
    provider: str = "tests"

    def invoke(self, *args: Any, **kwargs: Any) -> str:
        return reply_to(kwargs["messages"])

    async def ainvoke(self, *args: Any, **kwargs: Any) -> str:
        return reply_to(kwargs["messages"])

    def invoke_stream(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        yield reply_to(kwargs["messages"])

    async def ainvoke_stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[str]:  # type: ignore[override]
        yield reply_to(kwargs["messages"])

    def parse_provider_response(self, response: Any, **kwargs: Any) -> ModelResponse:
        return ModelResponse(role="assistant", content=response)

    def parse_provider_response_delta(self, response: Any) -> ModelResponse:
        return ModelResponse(role="assistant", content=response)
