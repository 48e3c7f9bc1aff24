"""Name -> class registries for stages, datasets, model families and executors.

Built-in plug-ins are discovered by importing every public module of their package, so adding a
technique is one new file; third-party plug-ins may register through an entry-point group.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

T = TypeVar("T")

# Third-party plug-ins that failed to load, one line each; the CLI prints them as warnings.
_plugin_problems: list[str] = []


def plugin_problems() -> list[str]:
    """The plug-in load failures not reported yet (each is returned once)."""
    found = list(_plugin_problems)
    _plugin_problems.clear()
    return found


def did_you_mean(word: str, choices: list[str]) -> str:
    """' (did you mean 'x'?)' for a near miss, else ''."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class UnknownName(KeyError):
    """A name that is not registered; the message lists the valid choices."""

    def __init__(self, kind: str, name: str, choices: list[str]) -> None:
        self.kind, self.name, self.choices = kind, name, choices
        super().__init__(name)

    def __str__(self) -> str:
        return (
            f"unknown {self.kind} '{self.name}'{did_you_mean(str(self.name), self.choices)}; "
            f"choose one of: {', '.join(self.choices)}"
        )


class Registry(Generic[T]):
    """A plain dict registry filled by a decorator, with lazy discovery of built-ins."""

    def __init__(self, kind: str, package: str, base: type | None = None) -> None:
        self.kind = kind
        self.package = package
        self.base = base
        self._items: dict[str, type[T]] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorator(cls: type[T]) -> type[T]:
            if self.base is not None and not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise TypeError(f"{cls!r} must subclass {self.base.__name__} to be a {self.kind}")
            existing = self._items.get(name)
            if existing is not None and existing is not cls:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            cls.name = name  # type: ignore[attr-defined]
            self._items[name] = cls
            return cls

        return decorator

    def unregister(self, name: str) -> None:
        """Remove a registration (for tests that add a temporary plug-in)."""
        self._items.pop(name, None)

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        pkg = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_") and info.name != "base":
                importlib.import_module(f"{self.package}.{info.name}")
        # Third-party plug-ins: an entry point in group effdl.stages / effdl.data / effdl.models.
        # One that fails to load is reported and skipped: it must not take effdl down with it.
        group = f"effdl.{self.package.rsplit('.', 1)[-1]}"
        for ep in entry_points(group=group):
            try:
                ep.load()
            except Exception as exc:
                reason = " ".join(str(exc).split())[:200]
                _plugin_problems.append(
                    f"{self.kind} plug-in '{ep.name}' ({ep.value}, entry point group {group}) "
                    f"failed to load and is ignored: {type(exc).__name__}: {reason}"
                )

    def get(self, name: str) -> type[T]:
        self._discover()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownName(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
