"""Write failures grouped by cause, so an admin reads "37 bad picklist values on Industry"
rather than a list of error codes from two CRMs.

The CRMs' codes differ (HubSpot categories, Salesforce statusCodes); the causes are what an
admin can act on, each with the place to look.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

#: error code (either CRM) -> cause
CAUSES: dict[str, str] = {
    "RATE_LIMITS": "rate limit", "REQUEST_LIMIT_EXCEEDED": "rate limit",
    "VALIDATION_ERROR": "validation", "FIELD_CUSTOM_VALIDATION_EXCEPTION": "validation",
    "STRING_TOO_LONG": "validation", "INVALID_FIELD_FOR_INSERT_UPDATE": "validation",
    "REQUIRED_FIELD_MISSING": "validation", "INVALID_NUMBER": "validation",
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": "bad picklist value",
    "INVALID_OPTION": "bad picklist value",
    "INSUFFICIENT_ACCESS_OR_READONLY": "permission", "MISSING_SCOPES": "permission",
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY": "permission",
    "UNABLE_TO_LOCK_ROW": "locked or converted", "LOCKED": "locked or converted",
    "CANNOT_UPDATE_CONVERTED_LEAD": "locked or converted",
    "ENTITY_IS_DELETED": "not found", "OBJECT_NOT_FOUND": "not found",
    "NOT_FOUND": "not found",
    "INVALID_CROSS_REFERENCE_KEY": "bad owner", "INVALID_OWNER_ID": "bad owner",
    "INACTIVE_OWNER_OR_USER": "bad owner",
    "INVALID_SESSION_ID": "auth", "INVALID_AUTHENTICATION": "auth",
}


def cause_of(error_code: str | None) -> str:
    """The cause an error code belongs to ("other" for codes not known here)."""
    return CAUSES.get((error_code or "").upper(), "other")


def by_cause(codes: Iterable[str | None]) -> Counter[str]:
    return Counter(cause_of(code) for code in codes)
