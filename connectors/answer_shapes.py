"""The shape checks every connector's answer readers share (connectors/hubspot/answers.py,
connectors/salesforce/answers.py): a part that must be a JSON object or a list, and the
error naming the request and the part when it is not.

Each CRM keeps its own AnswerShapeError (a subclass of the one here), so code that catches a
malformed answer of one connector does not catch another's; only the check and the wording
("<CRM> answered <where> with <type>, not an object") are written once.
"""

from __future__ import annotations

from syncer.domain.connector import ConnectorError
from syncer.domain.json_values import JSONObject, JSONValue


class AnswerShapeError(ConnectorError):
    """A CRM answer without a part syncer reads (or of another type)."""


class AnswerShapes:
    """The object and list checks of one CRM's answers: `crm` names it in the message,
    `error` is the exception raised, `hint` ends the message (say, what to check)."""

    def __init__(self, crm: str, error: type[AnswerShapeError], hint: str = "") -> None:
        self.crm = crm
        self.error = error
        self.hint = hint

    def _refuse(self, value: object, where: str, expected: str) -> AnswerShapeError:
        return self.error(f"{self.crm} answered {where} with {type(value).__name__}, "
                          f"not {expected}{self.hint}")

    def json_object(self, value: object, where: str) -> JSONObject:
        if not isinstance(value, dict):
            raise self._refuse(value, where, "an object")
        return value

    def json_list(self, value: object, where: str) -> list[JSONValue]:
        if not isinstance(value, list):
            raise self._refuse(value, where, "a list")
        return value
