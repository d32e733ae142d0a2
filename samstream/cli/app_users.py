"""`samstream app users`: the accounts of the app (once one exists, the app asks everyone to log in).

    samstream app users add alice --data ~/videos        # asks for the password twice
    echo "$PASSWORD" | samstream app users add bob --data ~/videos --password-stdin
    samstream app users list --data ~/videos
    samstream app users passwd alice --data ~/videos     # also logs alice out everywhere
    samstream app users remove bob --data ~/videos

Passwords are stored as scrypt hashes. The first user added owns the projects made before accounts existed;
other projects are seen by their owner and whom the owner shares them with. With accounts, `samstream app` may
listen beyond this machine (--host 0.0.0.0); serve it behind HTTPS there (a reverse proxy), as passwords and
session cookies cross the network.
"""
from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("users", help="add, list, remove users of the app and change their passwords",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    for name, help_text in (("add", "add a user"), ("list", "list the users"), ("remove", "remove a user"),
                            ("passwd", "change a user's password (ends their sessions)")):
        q = sub.add_parser(name, help=help_text, description=help_text)
        if name != "list":
            q.add_argument("name", help="the user's name")
        # its own dest: a sub-parser's default would replace `samstream app --data DIR users ...`'s value
        q.add_argument("--data", dest="users_data", default=None,
                       help="the app's library folder (default: the app's --data, else the current folder)")
        if name in ("add", "passwd"):
            q.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
        q.set_defaults(func=run)
    return p


def _password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def run(args) -> int:
    from ..app.accounts import Accounts
    from ..app.store import NotFound, Store

    data = Path(args.users_data or getattr(args, "data", None) or ".")
    if not data.is_dir():
        raise NotADirectoryError(f"--data {data}: not a folder")
    db = data / ".samstream" / "app.db"
    if args.users_command != "add" and not db.is_file():
        raise FileNotFoundError(f"--data {data}: no app database there (.samstream/app.db), so no users")
    password = _password(args) if args.users_command in ("add", "passwd") else None
    store = Store(db)
    try:
        accounts = Accounts(store)
        if args.users_command == "add":
            taken = accounts.add_user(args.name, password)
            print(f"added user {args.name}" + (f"; they own the {taken} project(s) made before accounts" if taken
                                               else ""))
        elif args.users_command == "list":
            users = accounts.users()
            print("\n".join(u["name"] for u in users) if users else "no users: the app runs in single-user mode")
        else:
            try:
                if args.users_command == "passwd":
                    accounts.set_password(args.name, password)
                    print(f"changed the password of {args.name}")
                else:
                    accounts.remove_user(args.name)
                    print(f"removed user {args.name}")
            except NotFound:
                raise ValueError(f"no user {args.name!r}") from None
    finally:
        store.close()
    return 0
