"""`syncer web`: the web admin (syncer/web/); `syncer user add`: its accounts."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from datetime import datetime, timezone

from syncer.cli.commands.common import add_config_option, load_args_config, open_writable
from syncer.domain.failures import BadInput

DEFAULT_PORT = 8788
_NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,80}$")


def _state_url(args: argparse.Namespace) -> str:
    return str(args.state) if args.state else load_args_config(args).state_url


def cmd_web(args: argparse.Namespace) -> int:
    from syncer.domain.config_base import is_loopback

    if not is_loopback(args.host) and not args.allow_remote:
        raise BadInput(f"--host {args.host} would serve the admin beyond this machine. Fix: "
                       "keep the default 127.0.0.1 (reach it through an SSH tunnel or a "
                       "TLS proxy on this host), or pass --allow-remote and put TLS in front "
                       "(docs/web.md)")
    import uvicorn

    from syncer.cli.runtime import Runtime
    from syncer.store.web_users import user_count
    from syncer.web.app import create_app

    loaded = load_args_config(args)
    store = open_writable(args.state or loaded.state_url)
    try:
        app = create_app(loaded, store, secure_cookies=args.secure_cookies,
                         open_runtime=Runtime)
        if user_count(store) == 0:
            print("syncer web: no account yet, so no one can log in. Fix: `syncer user add "
                  "NAME --role admin`", file=sys.stderr)
        print(f"syncer admin on http://{args.host}:{args.port}/ (Ctrl-C stops it)",
              file=sys.stderr)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning",
                    proxy_headers=True, forwarded_allow_ips=args.trusted_proxy,
                    server_header=False)
    finally:
        store.close()
    return 0


def read_password(from_stdin: bool) -> str:
    """The new password: one line of stdin (scripts), else typed twice at a prompt."""
    from syncer.web.auth import MIN_PASSWORD

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise BadInput("the two passwords differ. Fix: run the command again")
    if len(password) < MIN_PASSWORD:
        raise BadInput(f"the password has {len(password)} characters; use {MIN_PASSWORD} or "
                       "more")
    return password


def cmd_user_add(args: argparse.Namespace) -> int:
    from syncer.store.web_users import add_user
    from syncer.web.auth import hash_password

    name = args.name.strip()
    if not _NAME.match(name):
        raise BadInput(f"{args.name!r} is not a user name: use letters, digits and . _ @ + - "
                       "(80 at most)")
    password_hash = hash_password(read_password(args.password_stdin))
    store = open_writable(_state_url(args))
    try:
        add_user(store, name, args.role, password_hash, datetime.now(timezone.utc))
    finally:
        store.close()
    print(f"web user {name} added ({args.role}); log in at `syncer web`")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    web = add_config_option(sub.add_parser(
        "web", help="serve the web admin (runs, people, audit, dead letters, model, funnel)",
        description="Serve the web admin on 127.0.0.1. Log in with an account from `syncer "
                    "user add`. Binding elsewhere needs --allow-remote, and TLS in front "
                    "(docs/web.md)."))
    web.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    web.add_argument("--port", type=int, default=DEFAULT_PORT,
                     help=f"port (default {DEFAULT_PORT})")
    web.add_argument("--allow-remote", action="store_true",
                     help="allow a --host other than loopback (put TLS in front of it)")
    web.add_argument("--secure-cookies", action="store_true",
                     help="mark cookies Secure even when the proxy in front does not say "
                          "https (X-Forwarded-Proto)")
    web.add_argument("--trusted-proxy", default="127.0.0.1",
                     help="address of the TLS proxy whose X-Forwarded-* headers to trust "
                          "(default 127.0.0.1)")
    web.add_argument("--state", help="state database URL (default: the config's)")
    web.set_defaults(func=cmd_web)

    user = sub.add_parser("user", help="accounts of the web admin")
    actions = user.add_subparsers(dest="user_command", required=True)
    add = add_config_option(actions.add_parser(
        "add", help="create an account (asks for the password; hashed with argon2)"))
    add.add_argument("name")
    add.add_argument("--role", choices=("admin", "viewer"), required=True,
                     help="admin may publish, roll back, retry and discard; viewer reads")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin (scripts)")
    add.add_argument("--state", help="state database URL (default: the config's)")
    add.set_defaults(func=cmd_user_add)
