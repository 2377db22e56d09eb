"""An ASGI app served by uvicorn from a daemon thread of `syncer run` (the web admin, the
webhook endpoint): started, asked where it listens, and stopped after its requests."""

from __future__ import annotations

import threading

import uvicorn


class ServedApp:
    """uvicorn in a daemon thread; `stop()` asks it to finish its requests and waits."""

    def __init__(self, config: uvicorn.Config, name: str) -> None:
        self.config = config
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    @property
    def started(self) -> bool:
        return bool(self.server.started)

    @property
    def url(self) -> str:
        """Where it listens (the real port when the config asked for port 0)."""
        port = self.config.port
        for server in getattr(self.server, "servers", []):
            for sock in server.sockets:
                port = sock.getsockname()[1]
        return f"http://{self.config.host}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
