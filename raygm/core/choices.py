"""A named set of choices (datasets, models, inits, distances, ...), each defined once, next
to its implementation: the run config's allowed values, the CLI's help and every "unknown
..." error read the same registry, so they cannot drift apart."""
from __future__ import annotations

from typing import Any, Callable


class UnknownChoice(ValueError):
    def __init__(self, kind: str, name: Any, allowed: tuple[str, ...]):
        super().__init__(f"unknown {kind} {name!r}; allowed: {', '.join(allowed)}")
        self.kind, self.name, self.allowed = kind, name, allowed

    def __reduce__(self):  # so the error pickles (e.g. across Ray processes) intact
        return type(self), (self.kind, self.name, self.allowed)


class Choices(dict):
    """name -> implementation, in the order shown to users."""

    def __init__(self, kind: str, entries: dict[str, Any] | None = None):
        super().__init__(entries or {})
        self.kind = kind

    def register(self, name: str) -> Callable:
        """Decorator: add the decorated function under name."""
        def add(fn):
            self[name] = fn
            return fn
        return add

    def __getitem__(self, name: str) -> Any:
        if name not in self:
            raise UnknownChoice(self.kind, name, tuple(self))
        return super().__getitem__(name)
