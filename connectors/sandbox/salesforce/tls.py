"""HTTPS for the Salesforce sandbox: simple-salesforce only speaks https, so the sandbox
serves TLS with a throwaway certificate authority from `trustme`, and clients trust it
through the CA file written here (see specs/CLIENTS.md)."""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile

import trustme
from werkzeug.serving import WSGIRequestHandler

HANDSHAKE_TIMEOUT = 10.0


class TlsHandler(WSGIRequestHandler):
    """TLS per connection, in the connection's own thread, and no access log line.

    Werkzeug wraps the listening socket, so the TLS handshake runs in the accept loop and
    one client that connects but never finishes it (a timed-out or killed client) stops
    the whole server. Here the handshake runs in the request thread, with a timeout.
    """

    _tls_ok = False

    def setup(self) -> None:
        context = self.server.ssl_context
        assert isinstance(context, ssl.SSLContext)
        self.request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            self.request = context.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
            self._tls_ok = True
        except (ssl.SSLError, OSError):
            self._tls_ok = False
        super().setup()

    def handle(self) -> None:
        if self._tls_ok:
            super().handle()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with contextlib.suppress(OSError):
                self.request.close()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def localhost_tls(prefix: str) -> tuple[ssl.SSLContext, str]:
    """A server context for 127.0.0.1 signed by a fresh CA, and the path of that CA's
    certificate (a temporary file the caller removes when it stops serving)."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    handle, path = tempfile.mkstemp(prefix=prefix, suffix=".pem")
    os.close(handle)
    authority.cert_pem.write_to_path(path)
    return context, path
