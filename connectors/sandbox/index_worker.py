"""A worker process of the activity index (connectors/sandbox/index.py): it rebuilds the
world from its spec, indexes one range of people and sends the part back pickled on stdout.

Its own module, so the index itself never imports the World (the World builds its index).
Run as `python -m connectors.sandbox.index_worker SPEC START STOP`.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import sys
import threading
import time
from datetime import datetime

from connectors.sandbox.index import index_range
from connectors.sandbox.world import World


def _exit_with_parent(parent: int) -> None:
    """A worker whose parent died (Ctrl-C on `syncer sandbox`) stops instead of lingering."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    os.nice(10)  # requests the sandbox is answering meanwhile come first
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    spec = json.loads(argv[0])
    spec["now"] = datetime.fromisoformat(spec["now"])
    part = index_range(World.from_spec(spec), int(argv[1]), int(argv[2]))
    sys.stdout.buffer.write(pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    main(sys.argv[1:])
