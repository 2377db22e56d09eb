"""`syncer worker`, `syncer dispatch`, `syncer tenants` and `syncer metrics`: running many
tenants on PostgreSQL with procrastinate (syncer/ops/), and reading a tenant's figures."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from syncer.cli.commands.common import add_config_option, load_args_config, read_state


def _tenant_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--tenants", metavar="DIR",
                        help="one <tenant>.yaml per tenant (default: $SYNCER_TENANTS, ./tenants)")
    parser.add_argument("--queue-url", metavar="URL",
                        help="the PostgreSQL database of the job queue (default: "
                             "$SYNCER_QUEUE_URL, then $SYNCER_STATE_URL)")
    parser.add_argument("--stall-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="a worker silent this long is dead: its job goes back to the "
                             "queue (default 30)")
    parser.add_argument("--log-level", default="info",
                        choices=("debug", "info", "warning", "error"))
    return parser


def cmd_worker(args: argparse.Namespace) -> int:
    if args.processes > 1:
        return run_processes(args.processes)
    from syncer.cli.runtime import Runtime
    from syncer.domain.tenants import tenants_dir
    from syncer.observe.logs import configure_logging
    from syncer.ops.queue import build_app, queue_url
    from syncer.ops.worker import TenantRuntimes, WorkerOptions, run_worker

    configure_logging(args.log_level)
    app = build_app(queue_url(args.queue_url))
    runtimes = TenantRuntimes(tenants_dir(args.tenants), Runtime)
    options = WorkerOptions(queues=args.queue or None, concurrency=args.concurrency,
                            heartbeat_seconds=args.heartbeat,
                            stall_seconds=args.stall_timeout, name=args.name)
    try:
        asyncio.run(run_worker(app, runtimes, options))
    finally:
        runtimes.close()
    return 0


def run_processes(count: int) -> int:
    """`--processes N`: N worker processes (this command again, without the flag), each a
    worker of its own on the queue (processes, not threads: a sync is CPU-bound Python).
    SIGTERM/SIGINT is passed on to every one; the exit code is the worst of theirs."""
    import subprocess

    argv = sys.argv[1:]
    at = next(i for i, arg in enumerate(argv) if arg.startswith("--processes"))
    rest = argv[:at] + argv[at + (1 if "=" in argv[at] else 2):]
    children = [subprocess.Popen([sys.executable, "-m", "syncer.cli", *rest])
                for _ in range(count)]

    def pass_on(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, pass_on)
    signal.signal(signal.SIGINT, pass_on)
    codes = [child.wait() for child in children]
    return max(codes, key=abs)


def cmd_dispatch(args: argparse.Namespace) -> int:
    from syncer.domain.tenants import tenant_names, tenants_dir
    from syncer.observe.logs import configure_logging
    from syncer.ops.dispatcher import dispatch_forever
    from syncer.ops.queue import build_app, queue_url

    configure_logging(args.log_level)
    directory = tenants_dir(args.tenants)
    tenant_names(directory)  # a missing directory is a clear error now, not a log line later
    app = build_app(queue_url(args.queue_url))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        tally = await dispatch_forever(app, directory, tick_seconds=args.tick,
                                       stall_seconds=args.stall_timeout, stop=stop,
                                       ticks=1 if args.once else None)
        if args.once:
            print(f"deferred {tally.deferred} jobs ({tally.already_waiting} already "
                  f"waiting), reaped {tally.reaped}")

    asyncio.run(main())
    return 0


def cmd_tenants(args: argparse.Namespace) -> int:
    from syncer.domain.config_base import ConfigError
    from syncer.domain.tenants import load_tenant, tenant_names, tenants_dir
    from syncer.store.location import shown_url

    directory = tenants_dir(args.tenants)
    names = tenant_names(directory)
    if not names:
        print(f"{directory}: no tenants (add one <tenant>.yaml per tenant)")
        return 0
    bad = 0
    for name in names:
        try:
            loaded = load_tenant(directory, name)
        except ConfigError as error:
            bad += 1
            print(f"{name}: INVALID: {error.problems[0]}")
            continue
        schedule = ", ".join(f"{c.name} every {c.schedule.every_minutes:g} min"
                             for c in loaded.config.connectors)
        print(f"{name}: queue {loaded.config.worker.queue}; {schedule}; state "
              f"{shown_url(loaded.state_url)}")
    return 1 if bad else 0


def cmd_metrics(args: argparse.Namespace) -> int:
    """The tenant's (or the config's) figures in Prometheus text, from its state: what a
    worker deployment, which has no long-running /metrics of its own per tenant, shows."""
    from prometheus_client import generate_latest

    from syncer.observe.metrics import SyncMetrics, dead_letter_counts

    loaded = load_args_config(args)
    names = [c.name for c in loaded.config.connectors]
    metrics = SyncMetrics()
    metrics.declare(names)
    store = read_state(args)
    try:
        for run in reversed(store.runs(limit=None)):
            metrics.observe_run(run)
        metrics.load_history(store.last_runs(names))
        metrics.set_dead_letters(dead_letter_counts(store))
    finally:
        store.close()
    sys.stdout.write(generate_latest(metrics.registry).decode())
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = _tenant_options(sub.add_parser(
        "worker", help="take sync jobs of every tenant from the PostgreSQL queue",
        description="A procrastinate worker: runs the sync jobs `syncer dispatch` queues, "
                    "one per (tenant, connector) at a time across all workers. Start as "
                    "many as you need, on one or many machines (docs/operations.md)."))
    worker.add_argument("--queue", action="append", metavar="NAME",
                        help="take jobs of this queue only (repeat for several; default all)")
    worker.add_argument("--concurrency", type=int, default=1, metavar="N",
                        help="jobs run at once in this process (default 1)")
    worker.add_argument("--heartbeat", type=float, default=10.0, metavar="SECONDS",
                        help="how often the worker says it is alive (default 10)")
    worker.add_argument("--name", help="the worker's name in the queue and the logs")
    worker.add_argument("--processes", type=int, default=1, metavar="N",
                        help="start N worker processes (default 1); run the command on "
                             "several machines for more")
    worker.set_defaults(func=cmd_worker)

    dispatch = _tenant_options(sub.add_parser(
        "dispatch", help="queue each tenant's syncs on its schedule; requeue dead workers' jobs",
        description="The scheduling entry point of a scale-out deployment (one is enough; a "
                    "second is harmless)."))
    dispatch.add_argument("--tick", type=float, default=1.0, metavar="SECONDS",
                          help="how often to look at the schedule (default 1)")
    dispatch.add_argument("--once", action="store_true",
                          help="one pass, then exit (cron, tests)")
    dispatch.set_defaults(func=cmd_dispatch)

    tenants = sub.add_parser("tenants", help="list the tenants, their schedule and state")
    tenants.add_argument("--tenants", metavar="DIR",
                         help="the tenants directory (default: $SYNCER_TENANTS, ./tenants)")
    tenants.set_defaults(func=cmd_tenants)

    metrics = add_config_option(sub.add_parser(
        "metrics", help="the run and dead-letter figures of a state, in Prometheus text"))
    metrics.add_argument("--state", help="state database URL (default: the config's)")
    metrics.set_defaults(func=cmd_metrics)
