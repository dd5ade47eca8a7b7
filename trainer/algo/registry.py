"""A name → function registry for algorithm variants (losses, advantages, aggregations).

Pure Python. Registering a name twice and looking up an unknown one both fail with a message
that names the kind and the known names, so a typo in a config never falls through silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

F = TypeVar("F", bound=Callable)


class Registry(dict, Generic[F]):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator: `@REGISTRY.register("name")`."""

        def wrap(fn: F) -> F:
            if name in self:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self[name] = fn
            return fn

        return wrap

    def lookup(self, name: str) -> F:
        if name not in self:
            raise ValueError(f"unknown {self.kind} {name!r}; known: {sorted(self)}")
        return self[name]
