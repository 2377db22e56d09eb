"""Salesforce's error codes (statusCode, errorCode, OAuth `error`) by the cause an admin acts
on (syncer/domain/errors.py). The wiring registers `ERROR_CODES`, so the domain keeps no
Salesforce names."""

from __future__ import annotations

from collections.abc import Sequence

from syncer.domain import errors


def _malformed_reference(code: str, fields: Sequence[str]) -> str | None:
    """MALFORMED_ID names a malformed record id ("not found") unless it names a reference
    field other than the record's Id: syncer writes one reference, the owner."""
    if code == "MALFORMED_ID" and any(f.lower() != "id" for f in fields):
        return errors.BAD_OWNER
    return None


ERROR_CODES = errors.ErrorCodes.grouped("salesforce", {
    errors.RATE_LIMIT: ("REQUEST_LIMIT_EXCEEDED",),
    errors.VALIDATION: (
        "FIELD_CUSTOM_VALIDATION_EXCEPTION", "STRING_TOO_LONG", "REQUIRED_FIELD_MISSING",
        "INVALID_EMAIL_ADDRESS", "NUMBER_OUTSIDE_VALID_RANGE", "INVALID_VALUE",
        "INVALID_FIELD", "JSON_PARSER_ERROR", "INVALID_TYPE", "DUPLICATE_VALUE",
        "DUPLICATES_DETECTED", "EXCEEDED_ID_LIMIT", "MALFORMED_QUERY",
        "INVALID_QUERY_FILTER_OPERATOR", "INVALID_QUERY_LOCATOR", "METHOD_NOT_ALLOWED",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK", "PROCESSING_HALTED", "INVALID_INPUT",
        "LIMIT_EXCEEDED", "DUPLICATE_DEVELOPER_NAME",
        "FIELD_INTEGRITY_EXCEPTION"),
    errors.BAD_PICKLIST: ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",),
    errors.PERMISSION: (
        "INSUFFICIENT_ACCESS_OR_READONLY", "INSUFFICIENT_ACCESS",
        "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY", "INVALID_FIELD_FOR_INSERT_UPDATE",
        "INVALID_TYPE_FOR_OPERATION", "API_DISABLED_FOR_ORG", "FUNCTIONALITY_NOT_ENABLED"),
    errors.LOCKED: ("UNABLE_TO_LOCK_ROW", "ENTITY_IS_LOCKED", "CANNOT_UPDATE_CONVERTED_LEAD"),
    errors.NOT_FOUND: (
        "ENTITY_IS_DELETED", "NOT_FOUND", "MALFORMED_ID", "INVALID_ID_FIELD",
        "MISSING_ARGUMENT"),
    errors.AUTH: ("INVALID_SESSION_ID", "INVALID_GRANT"),
    errors.BAD_OWNER: ("INVALID_CROSS_REFERENCE_KEY", "INACTIVE_OWNER_OR_USER"),
    errors.UNAVAILABLE: (
        "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION", "REQUEST_RUNNING_TOO_LONG"),
}, by_fields=_malformed_reference)
