"""Who is asking: passwords, session cookies, CSRF tokens and the login throttle.

- Passwords are argon2 hashes (argon2-cffi's defaults); there is no default account, an
  admin creates each with `syncer user add NAME --role admin|viewer`.
- A session is a cookie signed with the server's secret (itsdangerous), HttpOnly,
  SameSite=Lax, Secure when the request came over TLS (or `secure_cookies`). It holds the
  user's name and the session's CSRF token, nothing else; the role is read from the store
  on every request, so a changed role or a removed account takes effect at once.
- Every POST carries the session's CSRF token (a form field, or the X-CSRF-Token header
  htmx sends); the login form carries a token of its own, bound to a short-lived cookie.
- Five wrong passwords in a row throttle the account for 15 minutes (counted in the store:
  syncer/store/web_users.py); an unknown name costs the same argon2 work as a known one.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "syncer_session"
LOGIN_COOKIE = "syncer_login"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
SESSION_SECONDS = 12 * 3600
LOGIN_FORM_SECONDS = 3600
#: wrong passwords in a row that throttle an account, and for how long
MAX_FAILED_LOGINS = 5
THROTTLE = timedelta(minutes=15)
MIN_PASSWORD = 10

_hasher = PasswordHasher()
_dummy_hash: list[str] = []


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    """True when `password` is the one hashed; None (no such user) does the same work."""
    if password_hash is None:
        if not _dummy_hash:
            _dummy_hash.append(_hasher.hash(secrets.token_urlsafe(16)))
        password_hash = _dummy_hash[0]
        password = "\0" + password  # never matches
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given), expected)


@dataclass(frozen=True)
class Session:
    user: str
    csrf: str


class Sessions:
    """Signs and reads the session and login-form cookies with one secret."""

    def __init__(self, secret: str) -> None:
        self._session = URLSafeTimedSerializer(secret, salt="syncer-web-session")
        self._login = URLSafeTimedSerializer(secret, salt="syncer-web-login")

    def issue(self, user: str) -> tuple[str, Session]:
        session = Session(user, secrets.token_urlsafe(32))
        return str(self._session.dumps({"u": session.user, "c": session.csrf})), session

    def read(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._session.loads(cookie, max_age=SESSION_SECONDS)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("u"), str) \
                or not isinstance(data.get("c"), str):
            return None
        return Session(data["u"], data["c"])

    def login_form(self) -> tuple[str, str]:
        """(cookie value, token for the form): the pair a login POST must bring back."""
        token = secrets.token_urlsafe(32)
        return str(self._login.dumps(token)), token

    def login_token(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            token = self._login.loads(cookie, max_age=LOGIN_FORM_SECONDS)
        except BadSignature:
            return None
        return token if isinstance(token, str) else None
