"""What compiling a model reads from it: the validated sections, as a Protocol.

plan.py compiles a `Model` and model.py builds its plan on first use; naming the sections
here, below both, lets plan.py take a model without importing model.py back (a type-only
circle the import check now rejects). `Model` satisfies this protocol as it is.
"""

from __future__ import annotations

from typing import Protocol

from syncer.qualify.named_schema import NamedScore
from syncer.qualify.routing_model import Routing
from syncer.qualify.schema import Engagement, Fit
from syncer.qualify.stage_schema import Lifecycle, Qualification


class ModelSections(Protocol):
    """A validated model's sections and the parts derived from them that compiling uses."""

    @property
    def fit(self) -> Fit: ...

    @property
    def engagement(self) -> Engagement: ...

    @property
    def qualification(self) -> Qualification: ...

    @property
    def lifecycle(self) -> Lifecycle: ...

    @property
    def routing(self) -> Routing: ...

    @property
    def primary_score(self) -> str: ...

    @property
    def matrix_cells(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def score_sections(self) -> tuple[tuple[NamedScore, Fit | None, Engagement | None], ...]:
        ...
