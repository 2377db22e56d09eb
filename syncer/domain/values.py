"""How CRM values compare: the one definition the store, the diff and recovery share."""

from __future__ import annotations


def canonical(value: object | None) -> str | None:
    """Compare CRM values as text, with numbers in one form ("42" == "42.0")."""
    if value is None:
        return None
    text = str(value).strip()
    if text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return text
