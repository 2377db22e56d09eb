"""A parser for the subset of SOQL the Salesforce sandbox answers.

Supported: SELECT of fields, relationship paths (Account.Name) or COUNT(); FROM one object;
WHERE with comparisons, IN / NOT IN, LIKE, NOT, AND / OR and parentheses; ORDER BY with
ASC/DESC and NULLS FIRST/LAST; LIMIT and OFFSET. Literals: quoted strings with backslash
escapes, numbers, unquoted date and datetime literals (datetimes with 0 to 6 fractional
digits and a Z, +hh:mm or +hhmm offset, as Salesforce takes them), the relative date
literals YESTERDAY, TODAY, TOMORROW, LAST_N_DAYS:n and NEXT_N_DAYS:n (kind "relative":
the sandbox resolves them against its clock, see sandbox_dates.py), null, true, false.

Anything else is refused with MALFORMED_QUERY rather than half-understood: a sandbox that
silently ignored a GROUP BY would let a connector pass tests that a real org would fail.
Like real SOQL, AND and OR cannot be mixed at one level without parentheses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone


class SoqlError(Exception):
    """A query Salesforce would refuse; `error_code` is the REST errorCode."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


@dataclass(frozen=True)
class Literal:
    """A value in a WHERE clause. `kind`: string, number, datetime, date, relative (a date
    literal such as LAST_N_DAYS:30, its text upper-cased in `value`), boolean, null."""

    kind: str
    value: str | float | datetime | date | bool | None


@dataclass(frozen=True)
class Comparison:
    path: str
    op: str  # one of = != < <= > >=
    value: Literal


@dataclass(frozen=True)
class InList:
    path: str
    negated: bool
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class Like:
    path: str
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class Not:
    inner: Condition


@dataclass(frozen=True)
class Junction:
    op: str  # AND or OR
    parts: tuple[Condition, ...]


Condition = Comparison | InList | Like | Not | Junction


@dataclass(frozen=True)
class OrderItem:
    path: str
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class Query:
    fields: tuple[str, ...]
    count_only: bool
    sobject: str
    where: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None


_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\dT])
  | (?P<number>[+-]?\d+(?:\.\d+)?)(?![\w.])
  | (?P<relative>(?i:YESTERDAY|TODAY|TOMORROW|(?:LAST|NEXT)_N_DAYS:\d+)(?![\w:.]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
""", re.VERBOSE)

_KEYWORDS = frozenset({
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC",
    "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "NULL", "TRUE", "FALSE", "GROUP", "HAVING",
    "WITH", "USING", "INCLUDES", "EXCLUDES", "FOR", "TYPEOF"})
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'",
            "\\": "\\"}
MAX_OFFSET = 2000


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    column: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "ident" else ""


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None or match.lastgroup is None:
            raise SoqlError("MALFORMED_QUERY",
                            f"unexpected token at column {position + 1}: "
                            f"{text[position:position + 20]!r}")
        if match.lastgroup != "ws":
            tokens.append(_Token(match.lastgroup, match.group(), position + 1))
        position = match.end()
    tokens.append(_Token("eof", "<EOF>", len(text) + 1))
    return tokens


def _unescape(body: str, *, like: bool) -> list[tuple[str, bool]]:
    """Decode a quoted string into (character, was_escaped) pairs."""
    chars: list[tuple[str, bool]] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            chars.append((char, False))
            index += 1
            continue
        escaped = body[index + 1]
        if escaped in _ESCAPES:
            chars.append((_ESCAPES[escaped], True))
        elif like and escaped in "%_":
            chars.append((escaped, True))
        else:
            raise SoqlError("MALFORMED_QUERY",
                            f"Invalid string literal '{body}'. Illegal escape sequence "
                            f"'\\{escaped}'")
        index += 2
    return chars


def parse_datetime_literal(text: str) -> datetime:
    """An unquoted SOQL datetime literal (Z, +hh:mm or +hhmm offset) as an aware datetime."""
    normalized = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", normalized):
        normalized = normalized[:-2] + ":" + normalized[-2:]
    try:
        return datetime.fromisoformat(normalized).astimezone(timezone.utc)
    except ValueError as error:
        raise SoqlError("MALFORMED_QUERY", f"invalid datetime literal: {text}") from error


def _like_regex(chars: list[tuple[str, bool]]) -> re.Pattern[str]:
    parts = []
    for char, escaped in chars:
        if char == "%" and not escaped:
            parts.append(".*")
        elif char == "_" and not escaped:
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.index = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def _advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def _fail(self, token: _Token | None = None) -> SoqlError:
        token = token or self.current
        return SoqlError("MALFORMED_QUERY",
                         f"ERROR at Row:1:Column:{token.column}\nunexpected token: {token.text}")

    def _keyword(self, word: str) -> bool:
        if self.current.upper == word:
            self._advance()
            return True
        return False

    def _expect_keyword(self, word: str) -> None:
        if not self._keyword(word):
            raise self._fail()

    def _expect_punct(self, char: str) -> None:
        if self.current.kind != "punct" or self.current.text != char:
            raise self._fail()
        self._advance()

    def _path(self, *, object_name: bool = False) -> str:
        token = self.current
        if token.kind != "ident" or (token.upper in _KEYWORDS and not object_name):
            raise self._fail()
        self._advance()
        return token.text

    def parse(self) -> Query:
        self._expect_keyword("SELECT")
        fields, count_only = self._select_list()
        self._expect_keyword("FROM")
        sobject = self._path(object_name=True)  # "Group" is an sObject, not GROUP BY
        if "." in sobject:
            raise self._fail()
        where = self._condition() if self._keyword("WHERE") else None
        order_by: tuple[OrderItem, ...] = ()
        if self._keyword("ORDER"):
            self._expect_keyword("BY")
            order_by = self._order_list()
        limit = self._integer() if self._keyword("LIMIT") else None
        offset = self._integer() if self._keyword("OFFSET") else None
        if self.current.kind != "eof":
            raise self._fail()
        if offset is not None and offset > MAX_OFFSET:
            raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE",
                            f"Maximum SOQL offset allowed is {MAX_OFFSET}")
        return Query(tuple(fields), count_only, sobject, where, order_by, limit, offset)

    def _select_list(self) -> tuple[list[str], bool]:
        if self.current.upper == "COUNT" and self.tokens[self.index + 1].text == "(":
            self._advance()
            self._expect_punct("(")
            self._expect_punct(")")
            return [], True
        fields = [self._path()]
        while self.current.text == ",":
            self._advance()
            fields.append(self._path())
        seen: set[str] = set()
        for name in fields:
            if name.lower() in seen:
                raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {name}")
            seen.add(name.lower())
        return fields, False

    def _integer(self) -> int:
        token = self._advance()
        if token.kind != "number" or not token.text.isdigit():
            raise self._fail(token)
        return int(token.text)

    def _order_list(self) -> tuple[OrderItem, ...]:
        items = []
        while True:
            path = self._path()
            descending = self._keyword("DESC")
            if not descending:
                self._keyword("ASC")
            nulls_first = not descending
            if self._keyword("NULLS"):
                if self._keyword("FIRST"):
                    nulls_first = True
                else:
                    self._expect_keyword("LAST")
                    nulls_first = False
            items.append(OrderItem(path, descending, nulls_first))
            if self.current.text != ",":
                return tuple(items)
            self._advance()

    def _condition(self) -> Condition:
        first = self._unary()
        connective = self.current.upper
        if connective not in ("AND", "OR"):
            return first
        parts = [first]
        while self._keyword(connective):
            parts.append(self._unary())
        if self.current.upper in ("AND", "OR"):
            raise self._fail()  # mixing AND and OR needs parentheses in SOQL
        return Junction(connective, tuple(parts))

    def _unary(self) -> Condition:
        if self._keyword("NOT"):
            return Not(self._unary())
        if self.current.text == "(" and self.current.kind == "punct":
            self._advance()
            inner = self._condition()
            self._expect_punct(")")
            return inner
        return self._simple()

    def _simple(self) -> Condition:
        path = self._path()
        token = self.current
        if token.kind == "op":
            self._advance()
            op = "!=" if token.text == "<>" else token.text
            return Comparison(path, op, self._literal())
        if self._keyword("LIKE"):
            pattern = self._advance()
            if pattern.kind != "string":
                raise self._fail(pattern)
            return Like(path, _like_regex(_unescape(pattern.text[1:-1], like=True)))
        negated = self._keyword("NOT")
        if self._keyword("IN"):
            self._expect_punct("(")
            values = [self._literal()]
            while self.current.text == ",":
                self._advance()
                values.append(self._literal())
            self._expect_punct(")")
            return InList(path, negated, tuple(values))
        raise self._fail()

    def _literal(self) -> Literal:
        token = self._advance()
        if token.kind == "string":
            body = "".join(char for char, _ in _unescape(token.text[1:-1], like=False))
            return Literal("string", body)
        if token.kind == "number":
            return Literal("number", float(token.text))
        if token.kind == "datetime":
            return Literal("datetime", parse_datetime_literal(token.text))
        if token.kind == "relative":
            return Literal("relative", token.text.upper())
        if token.kind == "date":
            try:
                return Literal("date", date.fromisoformat(token.text))
            except ValueError as error:
                raise SoqlError("MALFORMED_QUERY", f"invalid date: {token.text}") from error
        word = token.upper
        if word == "NULL":
            return Literal("null", None)
        if word in ("TRUE", "FALSE"):
            return Literal("boolean", word == "TRUE")
        raise self._fail(token)


def parse(text: str) -> Query:
    """Parse one SOQL statement; raises SoqlError(MALFORMED_QUERY) for anything unsupported."""
    return _Parser(text).parse()


def quote(value: str) -> str:
    """A SOQL string literal for `value`, escaped so it can never end the literal early."""
    escaped = (value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t").replace('"', '\\"'))
    return f"'{escaped}'"


def datetime_literal(value: datetime) -> str:
    """An unquoted SOQL datetime literal in UTC, whole seconds (rounded down)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    utc = value.astimezone(timezone.utc).replace(microsecond=0, tzinfo=None)
    return utc.isoformat() + "Z"  # isoformat pads the year to four digits, strftime not
