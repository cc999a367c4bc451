"""Base classes of the typed results (:mod:`nutrimeta.results`): strict records and the
probability statement, shared by every results module."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["OpenRecord", "Probability", "Record", "Relation"]

Relation = Literal["<", ">"]
#: Which way an outcome moves when supplementation helps.
Direction = Literal["increase", "decrease"]


class Record(BaseModel):
    """Base of every results class: unknown fields are an error (no silent drift)."""

    model_config = ConfigDict(extra="forbid", frozen=False)


class OpenRecord(BaseModel):
    """A record passed through from an engine (diagnostics, frequentist fit, priors): the
    named fields are required by the report; further fields the engine adds are kept."""

    model_config = ConfigDict(extra="allow")


class Probability(Record):
    """A posterior probability statement: P(quantity relation threshold) = value."""

    quantity: str
    relation: Relation
    threshold: float
    value: float

    @property
    def text(self) -> str:
        """The statement as printed, e.g. ``P(mu < 0)``."""
        return f"P({self.quantity} {self.relation} {self.threshold:g})"

    def says(self, quantity: str, relation: str, threshold: float) -> bool:
        """True when this is the statement P(quantity relation threshold)."""
        return (self.quantity == quantity and self.relation == relation
                and math.isclose(self.threshold, threshold, abs_tol=1e-12))
