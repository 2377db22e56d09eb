"""A test-only knob: the same pull, in another order and cut into other pages.

`Reordered` wraps a real connector (talking to a sandbox through its real client) and
hands the pipeline what that connector pulled, people and activities alike, shuffled by a
seed and re-cut into pages of `page_size` (records of one person may land on different
pages, in either order). Writes, owners and everything else pass straight through. The
order-independence tests sync one world under several of these and compare the CRMs.
No production code imports it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TypeVar

from syncer.domain.accounts import Account
from syncer.domain.api_usage import ApiUsage
from syncer.domain.connector import Connector
from syncer.domain.types import (
    Activity,
    CreateResult,
    NewPerson,
    Owner,
    Person,
    PushResult,
    RecordUpdate,
    Succession,
)

T = TypeVar("T")


class Reordered:
    """`inner`'s pulls, permuted by `seed` and re-paged by `page_size` (>= 1)."""

    def __init__(self, inner: Connector, seed: int, page_size: int) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self.inner = inner
        self.name = inner.name
        self.max_batch = inner.max_batch
        self.page_size = page_size
        self._rng = random.Random(seed)

    def _repaged(self, pages: Iterable[list[T]]) -> Iterator[list[T]]:
        items = [item for page in pages for item in page]
        self._rng.shuffle(items)
        for start in range(0, len(items), self.page_size):
            yield items[start:start + self.page_size]

    def people(self, since: datetime | None = None) -> Iterator[list[Person]]:
        return self._repaged(self.inner.people(since))

    def activities(self, since: datetime) -> Iterator[list[Activity]]:
        return self._repaged(self.inner.activities(since))

    def accounts(self, since: datetime | None = None) -> Iterator[list[Account]]:
        return self._repaged(self.inner.accounts(since))

    def owners(self) -> list[Owner]:
        owners = list(self.inner.owners())
        self._rng.shuffle(owners)
        return owners

    def push(self, updates: Sequence[RecordUpdate]) -> list[PushResult]:
        return self.inner.push(updates)

    def successions(self, since: datetime) -> Iterator[list[Succession]]:
        return self.inner.successions(since)

    def person_field_problems(self) -> list[str]:
        return self.inner.person_field_problems()

    def create(self, people: Sequence[NewPerson]) -> list[CreateResult]:
        return self.inner.create(people)

    @property
    def api_calls(self) -> int:
        return self.inner.api_calls

    @property
    def usage(self) -> ApiUsage | None:
        """The wrapped connector's API usage accounting, if it keeps one."""
        usage = getattr(self.inner, "usage", None)
        return usage if isinstance(usage, ApiUsage) else None

    def close(self) -> None:
        self.inner.close()
