"""An offline agno Model that calls one named tool, for the parity scenarios (test_agno_parity.py).

`ToolScriptModel(tool=..., arguments=...)` asks agno to call `tool` with `arguments` whenever the
conversation's last message is the user's and agno offers that tool; once a tool answered, it
reports the tool's result ("Tool said: ..."). Without the tool it answers as `MemoryModel` does.
It streams too: the same response as one delta, so agno's streamed runs (and their events) go
through the same tool call as the plain ones.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from agno.models.message import Message
from agno.models.response import ModelResponse

from tests.agno.memory_model import reply_to
from tests.agno.models import ToolCallingModel


@dataclass
class ToolScriptModel(ToolCallingModel):
    tool: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)

    def respond(self, messages: list[Message], offered: set[str]) -> ModelResponse | str:
        last = messages[-1]
        if last.role == "tool":
            return f"Tool said: {last.content}"
        if last.role == "user" and self.tool in offered:
            call = {
                "id": f"call_{self.tool}",
                "type": "function",
                "function": {"name": self.tool, "arguments": json.dumps(self.arguments)},
            }
            return ModelResponse(role="assistant", tool_calls=[call])
        return reply_to(messages)

    def invoke_stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        yield self.invoke(*args, **kwargs)

    async def ainvoke_stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:  # type: ignore[override]
        yield self.invoke(*args, **kwargs)

    def parse_provider_response_delta(self, response: Any) -> ModelResponse:
        if isinstance(response, ModelResponse):
            return response
        return ModelResponse(role="assistant", content=response)
