"""The web admin inside `syncer run` (`web: {enabled: true}`): served from a thread of the
daemon, over the daemon's own store, so one process syncs and shows what it did."""

from __future__ import annotations

import threading

import structlog
import uvicorn

from syncer.domain.config import LoadedConfig
from syncer.run.runtime import OpenRuntime
from syncer.store.repository import Store
from syncer.store.web_users import user_count
from syncer.web.app import create_app

log = structlog.get_logger(__name__)


class WebThread:
    """uvicorn in a daemon thread; `stop()` asks it to finish its requests and waits."""

    def __init__(self, loaded: LoadedConfig, store: Store, open_runtime: OpenRuntime) -> None:
        web = loaded.config.web
        app = create_app(loaded, store, secure_cookies=web.secure_cookies,
                         open_runtime=open_runtime)
        self.config = uvicorn.Config(app, host=web.host, port=web.port, log_level="warning",
                                     proxy_headers=True, forwarded_allow_ips=web.trusted_proxy,
                                     server_header=False)
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, name="syncer-web", daemon=True)
        if user_count(store) == 0:
            log.warning("web.no_accounts", fix="syncer user add NAME --role admin")

    def start(self) -> None:
        self.thread.start()
        log.info("web.started", url=f"http://{self.config.host}:{self.config.port}/")

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
