"""The writer's log lines, relayed to the application's ``logging`` through the segment's
message slots: once per kind of trouble, not once per batch."""

from __future__ import annotations

from ..control import Messages


class Publisher:
    def __init__(self, messages: Messages) -> None:
        self.messages = messages
        self._last_key = ""
        self._keys: set[str] = set()

    def publish(self, level: int, key: str, message: str) -> None:
        """Hand ``message`` to the application unless a message of the same ``key`` was
        handed since the last ``forget`` (an empty key is always handed)."""
        if key and (key == self._last_key or key in self._keys):
            return
        self._last_key = key
        if key:
            self._keys.add(key)
        self.messages.write(level, message)

    def forget(self) -> None:
        """Delivery recovered: the next trouble of any kind is worth saying again."""
        self._keys.clear()
