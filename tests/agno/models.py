"""Models that call one of agno's tools, as a real model would, deterministically.

`MemoryModel` (memory_model.py) answers from the conversation it is given. Two of agno's features
work only through tools the model chooses to call: a Team's leader hands a task to a member with
`transfer_task_to_member`, and an agent with `search_previous_sessions_history` reads earlier
sessions with `get_previous_session_messages`. These models call those tools, then answer from
what the tool returned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agno.models.message import Message
from agno.models.response import ModelResponse

from tests.agno.memory_model import NO_HISTORY, MemoryModel, reply_to

LAST_QUESTION = "What was my last question?"


def _tool_call(name: str, arguments: dict[str, Any]) -> ModelResponse:
    call = {
        "id": f"call_{name}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }
    return ModelResponse(role="assistant", tool_calls=[call])


def _offered(kwargs: dict[str, Any]) -> set[str]:
    return {tool["function"]["name"] for tool in kwargs.get("tools") or [] if "function" in tool}


def _question(messages: list[Message]) -> str:
    asked = [str(m.content) for m in messages if m.role == "user" and m.content is not None]
    return asked[-1] if asked else ""


@dataclass
class ToolCallingModel(MemoryModel):
    """A MemoryModel whose `respond` may return a tool call; a tool's result ends the turn."""

    def respond(self, messages: list[Message], offered: set[str]) -> ModelResponse | str:
        return reply_to(messages)

    def invoke(self, *args: Any, **kwargs: Any) -> Any:
        messages: list[Message] = kwargs["messages"]
        return self.respond(messages, _offered(kwargs))

    async def ainvoke(self, *args: Any, **kwargs: Any) -> Any:
        return self.invoke(*args, **kwargs)

    def parse_provider_response(self, response: Any, **kwargs: Any) -> ModelResponse:
        if isinstance(response, ModelResponse):
            return response
        return ModelResponse(role="assistant", content=response)


@dataclass
class TeamLeaderModel(ToolCallingModel):
    """Hands every task but "What was my last question?" to the member `member_id`, then reports
    the member's answer; that question it answers from the team's history."""

    member_id: str = "researcher"

    def respond(self, messages: list[Message], offered: set[str]) -> ModelResponse | str:
        if messages[-1].role == "tool":
            return f"The team found: {messages[-1].content}"
        question = _question(messages)
        if "last question" in question.lower() or "transfer_task_to_member" not in offered:
            return reply_to(messages)
        arguments = {
            "member_id": self.member_id,
            "task_description": question,
            "expected_output": "an answer",
        }
        return _tool_call("transfer_task_to_member", arguments)


@dataclass
class HistorySearchingModel(ToolCallingModel):
    """Asked for the last question, reads earlier sessions with `get_previous_session_messages`
    and answers with the first question found there (agno lists the newest session first)."""

    def respond(self, messages: list[Message], offered: set[str]) -> ModelResponse | str:
        if messages[-1].role == "tool":
            result = str(messages[-1].content)  # JSON, or "No history found"
            found = json.loads(result) if result.startswith("[") else []
            asked = [m["content"] for m in found if m.get("role") == "user"]
            return f"Your last question was: {asked[0]}" if asked else NO_HISTORY
        if "last question" in _question(messages).lower() and "get_previous_session_messages" in offered:
            return _tool_call("get_previous_session_messages", {})
        return reply_to(messages)
