"""The web admin inside `syncer run` (`web: {enabled: true}`): served from a thread of the
daemon, over the daemon's own store, so one process syncs and shows what it did."""

from __future__ import annotations

import structlog
import uvicorn

from syncer.domain.config import LoadedConfig
from syncer.run.runtime import OpenRuntime
from syncer.store.repository import Store
from syncer.store.web_users import user_count
from syncer.web.app import create_app
from syncer.web.served import ServedApp

log = structlog.get_logger(__name__)


class WebThread(ServedApp):
    """The admin app in a daemon thread; `stop()` lets it finish its requests."""

    def __init__(self, loaded: LoadedConfig, store: Store, open_runtime: OpenRuntime) -> None:
        web = loaded.config.web
        app = create_app(loaded, store, secure_cookies=web.secure_cookies,
                         open_runtime=open_runtime)
        super().__init__(uvicorn.Config(
            app, host=web.host, port=web.port, log_level="warning", proxy_headers=True,
            forwarded_allow_ips=web.trusted_proxy, server_header=False), "syncer-web")
        if user_count(store) == 0:
            log.warning("web.no_accounts", fix="syncer user add NAME --role admin")

    def start(self) -> None:
        super().start()
        log.info("web.started", url=f"http://{self.config.host}:{self.config.port}/")
