"""Helpers for the run-lock tests: syncer as a real child process, a line it prints as an
event, and a TCP gate that holds a child's CRM calls until the test opens it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO


def syncer_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "syncer.cli", *args]


def child_env(spool: Path) -> dict[str, str]:
    """The test's environment (sandbox secrets included), minus a state URL override, with
    its own spool file."""
    env = {k: v for k, v in os.environ.items() if k != "SYNCER_STATE_URL"}
    env["SYNCER_SPOOL"] = str(spool)
    return env


class LineWatch:
    """Reads a child's stream to the end in a thread; `seen` is set by the first line that
    contains `needle` (kept in `line`)."""

    def __init__(self, stream: IO[bytes], needle: str) -> None:
        self.needle = needle
        self.seen = threading.Event()
        self.line = ""
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            if not self.seen.is_set() and self.needle in line:
                self.line = line
                self.seen.set()
        stream.close()

    def join(self) -> str:
        self._thread.join(timeout=60)
        return "".join(self.lines)


class GatedProxy:
    """A TCP forwarder to 127.0.0.1:`target` that connects nothing until `open()`: a child
    pointed at it blocks on its first call to that CRM, holding whatever it holds."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.gate = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self._sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self.gate.wait()
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target))
        except OSError:
            client.close()
            return
        self._sockets.append(upstream)
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
        _pump(client, upstream)

    def open(self) -> None:
        self.gate.set()

    def close(self) -> None:
        self.gate.set()
        self.server.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


def run_syncer(args: Sequence[str], env: dict[str, str], cwd: Path,
               timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(syncer_command(*args), env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False)
