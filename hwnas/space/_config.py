"""The architecture config: a frozen, hashable sample of a search space."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping


def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class ArchConfig(Mapping[str, Any]):
    """One architecture: the model builder's name and the parameter values (per-layer ones as tuples).

    Equal configs hash equally; :attr:`key` (a short SHA-256 of the canonical JSON) keys every cache.
    """

    model: str
    values: Mapping[str, Any]
    space: str = ""
    _json: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        frozen = {k: _freeze(v) for k, v in sorted(self.values.items())}
        object.__setattr__(self, "values", frozen)
        object.__setattr__(self, "_json", json.dumps(self.to_dict(), sort_keys=True))

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __hash__(self) -> int:
        return hash(self._json)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArchConfig) and self._json == other._json

    @property
    def key(self) -> str:
        """Stable 16-hex-digit identity of this config (independent of the space's name)."""
        body = json.dumps({"model": self.model, "values": self.to_dict()["values"]}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "space": self.space, "values": {k: _thaw(v) for k, v in self.values.items()}}

    def to_json(self) -> str:
        return self._json

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ArchConfig":
        return cls(model=data["model"], values=dict(data["values"]), space=data.get("space", ""))

    @classmethod
    def from_json(cls, text: str) -> "ArchConfig":
        return cls.from_dict(json.loads(text))
