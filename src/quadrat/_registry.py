"""One registry convention for every extension point (extractors, SSL methods, readers).

As timm's model registry: a name maps to a factory; ``register`` is a decorator placed
where the factory is defined; ``list`` filters names with fnmatch patterns; ``get`` of an
unknown name is an :class:`~quadrat.errors.InputError` with a did-you-mean suggestion.
Registering a *different* object under a taken name is an error (silent overwrites made
two plugins shadow each other); registering the same object again is a no-op, so that
re-importing a module is harmless.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from quadrat.errors import InputError

T = TypeVar("T")
F = TypeVar("F")


class Registry(Generic[T]):
    """Names to objects of one kind (``kind`` appears in messages: "extractor", "method").

    >>> shapes: Registry[int] = Registry("shape")
    >>> _ = shapes.register("square")(4)
    >>> shapes.get("square")
    4
    >>> shapes.get("sqare")
    Traceback (most recent call last):
    ...
    quadrat.errors.InputError: unknown shape 'sqare'; did you mean 'square'? (known: square)
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator: make the decorated object available as ``name``."""

        def decorate(obj: F) -> F:
            known = self._items.get(name)
            if known is not None and known is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj  # type: ignore[assignment]
            return obj

        return decorate

    def get(self, name: str) -> T:
        """The object registered as ``name``; an unknown name says what is known."""
        try:
            return self._items[name]
        except KeyError:
            raise InputError(self.unknown_message(name), value=name, param=self.kind) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._items), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.list())})"

    def list(self, pattern: str | None = None) -> list[str]:
        """Registered names, sorted, optionally filtered by an fnmatch pattern."""
        names = sorted(self._items)
        return names if pattern is None else fnmatch.filter(names, pattern)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._items)


__all__ = ["Registry"]
