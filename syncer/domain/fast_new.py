"""Fast constructors for frozen domain objects built by the thousand.

A frozen dataclass's generated `__init__` sets each field through `object.__setattr__`
(the class forbids plain assignment), which costs about as much as the rest of building
one small object. Where a sync builds such objects by the hundred thousand (the core's
Reasons and ledger lines: syncer/qualify/construct.py; the activities the store loads for
deciding), they are created here by calling each slot's descriptor directly, at about half
the cost. The objects are the same in every respect (type, equality, hash, repr,
pickling). Each constructor takes every field positionally, defaults included, so nothing
is left unset; and `slot_setters` fails at import, not with half-initialized objects, if
the class gains, loses or reorders a field or grows a `__post_init__`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime

from syncer.domain.types import Activity, ActivityType

new_object = object.__new__


def slot_setters(cls: type, names: tuple[str, ...]
                 ) -> tuple[Callable[[object, object], None], ...]:
    """The slot setters of `cls`, in field order; RuntimeError if its fields are not
    `names` (a constructor built on them would leave a field unset)."""
    if tuple(f.name for f in dataclasses.fields(cls)) != names or hasattr(
            cls, "__post_init__"):
        raise RuntimeError(f"{cls.__name__} changed: update its fast constructor")
    return tuple(getattr(cls, name).__set__ for name in names)


def _activity() -> Callable[[str, str, str, ActivityType, datetime, Mapping[str, str]],
                            Activity]:
    source, source_id, record_id, kind, occurred_at, attributes = slot_setters(
        Activity, ("source", "source_id", "record_id", "type", "occurred_at", "attributes"))

    def activity(source_: str, source_id_: str, record_id_: str, type_: ActivityType,
                 occurred_at_: datetime, attributes_: Mapping[str, str]) -> Activity:
        """Activity(source, source_id, record_id, type, occurred_at, attributes)."""
        made: Activity = new_object(Activity)
        source(made, source_)
        source_id(made, source_id_)
        record_id(made, record_id_)
        kind(made, type_)
        occurred_at(made, occurred_at_)
        attributes(made, attributes_)
        return made
    return activity


#: Activity(source, source_id, record_id, type, occurred_at, attributes)
new_activity = _activity()
