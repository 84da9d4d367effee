"""What a declared parameter is: its type and rules (ParamSpec), and the errors a job's
params can have (ParamError, InvalidParams). Pure."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from exportd.errors import ErrorKind, ExportError


class ParamType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    ENUM = "enum"
    LIST = "list"


SCALAR_TYPES: tuple[ParamType, ...] = tuple(t for t in ParamType if t is not ParamType.LIST)
ORDERED_TYPES = frozenset({ParamType.INTEGER, ParamType.NUMBER, ParamType.DATE, ParamType.DATETIME})

NAME_RE = re.compile(r"[a-z_][a-z0-9_]*")
# Always bound to the job's owner, so a request can never choose whose data it reads.
RESERVED_NAMES = frozenset({"owner"})


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter. Bounds and defaults hold typed values (int, Decimal, date...)."""

    name: str
    type: ParamType
    required: bool = True
    default: object = None
    description: str = ""
    min: object = None
    max: object = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    values: tuple[str, ...] | None = None
    items: ParamType | None = None
    max_items: int | None = None

    def item_spec(self, index: int) -> ParamSpec:
        """The spec one item of a list is checked against: the list's rules, minus listness."""
        assert self.items is not None
        return replace(
            self,
            name=f"{self.name}[{index}]",
            type=self.items,
            items=None,
            max_items=None,
            required=True,
            default=None,
        )


@dataclass(frozen=True)
class ParamError:
    """One problem with one field, phrased for the person who sent it."""

    field: str
    rule: str
    message: str
    allowed: object = None


class InvalidParams(ExportError):
    """A job's params do not fit its kind; ``errors`` lists every problem found."""

    def __init__(self, errors: Sequence[ParamError]) -> None:
        self.errors = list(errors)
        super().__init__(ErrorKind.INVALID_PARAMS, "; ".join(e.message for e in self.errors))
