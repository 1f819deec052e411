"""Name -> factory registries. The decorated function's name is the YAML key."""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Iterable

from .errors import DfsweepError

__all__ = ["Registry"]


class Registry:
    """A name -> callable table; registering a name twice raises, an unknown name lists the valid ones."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, Callable[..., Any]] = {}

    def register(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        name = fn.__name__
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = fn
        return fn

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str, key: str | None = None) -> Callable[..., Any]:
        if name not in self._entries:
            where = f"{key}: " if key else ""
            raise DfsweepError(
                f"{where}unknown {self.kind} {name!r}; valid choices: {', '.join(self.names())}"
            )
        return self._entries[name]

    def defaults(self, name: str) -> Dict[str, Any]:
        """Keyword parameters of the factory with their defaults (what YAML may set)."""
        sig = inspect.signature(self.get(name))
        return {
            p.name: p.default
            for p in sig.parameters.values()
            if p.kind is p.KEYWORD_ONLY or (p.default is not p.empty and p.kind is p.POSITIONAL_OR_KEYWORD)
        }

    def check_params(self, name: str, params: Dict[str, Any], key: str, fixed: Iterable[str] = ()) -> Dict[str, Any]:
        """Validate and coerce `params` against the factory's keyword defaults; return the full set."""
        defaults = {k: v for k, v in self.defaults(name).items() if k not in set(fixed)}
        out = dict(defaults)
        for k, v in params.items():
            if k not in defaults:
                raise DfsweepError(
                    f"{key}.{k}: unknown parameter for {self.kind} {name!r}; valid: {', '.join(sorted(defaults))}"
                )
            out[k] = _coerce_like(defaults[k], v, f"{key}.{k}")
        return out


def _coerce_like(default: Any, value: Any, key: str) -> Any:
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise DfsweepError(f"{key}: expected true/false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise DfsweepError(f"{key}: expected an integer, got {value!r}")
    if isinstance(default, float):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise DfsweepError(f"{key}: expected a number, got {value!r}")
    if isinstance(default, (tuple, list)):
        if isinstance(value, (list, tuple)):
            return tuple(value)
        raise DfsweepError(f"{key}: expected a list, got {value!r}")
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        raise DfsweepError(f"{key}: expected a string, got {value!r}")
    return value
