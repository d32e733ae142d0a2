"""`samstream app`: the annotation web app, served on this machine.

    samstream app --data ~/videos            # then open the printed URL in a browser

DATA is the library: the app lists and opens only the videos and frame folders below it, keeps its database in
DATA/.samstream/app.db and puts uploads in DATA/uploads/. Everything is saved as you go: stopping the server
(even killing it) loses no acknowledged edit. With no accounts the app is single-user and listens only on this
machine (a loopback address); once `samstream app users add NAME` made one, everyone logs in, and --host may be
an address other machines reach (then serve it behind HTTPS).
"""
from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from pathlib import Path

from . import app_export, app_users
from .args import add_precision_argument, device, positive_int

LOOPBACK_NAMES = ("localhost",)
APP_EXTRA = ("fastapi", "uvicorn", "starlette", "pydantic", "multipart", "python_multipart")  # the `app` extra


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine only: 'localhost' or a loopback address (127.0.0.0/8, ::1)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _port(text: str) -> int:
    port = positive_int(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1..65535, got {port}")
    return port


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("app", help="annotate video masks in the browser (a local web app)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=".", help="the library folder the app may read (default: the current folder)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1); any other needs accounts (`app users add`)")
    p.add_argument("--port", type=_port, default=8000)
    p.add_argument("--model", default=None, help="official model name or checkpoint path (default: the built-in model)")
    p.add_argument("--device", type=device, default=None, help="cpu, cuda, ... (default: cuda if available)")
    add_precision_argument(p)  # tracking and proposals
    p.add_argument("--max-upload-mb", type=positive_int, default=2048, help="largest upload accepted, in MiB")
    p.set_defaults(func=run)
    # sub-commands; none: serve. One subparsers object (argparse allows one): every sub-command registers on it
    sub = p.add_subparsers(dest="app_command", metavar="COMMAND")
    app_export.add_parser(sub)
    app_users.add_parser(sub)
    return p


def url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/"


def _check_port(host: str, port: int) -> None:
    """Refuse a port another program listens on, in one line (before the model loads; uvicorn binds the same
    way, with SO_REUSEADDR)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise ValueError(f"cannot serve on {url(host, port)}: {e.strerror or e} (is another program using the "
                             "port? choose another with --port)") from None


def check_host(host: str, data: Path) -> bool:
    """Whether the server must ask for logins: True for a host beyond this machine, which is refused (one line)
    while the library's database has no account."""
    if is_loopback(host):
        return False
    db = data / ".samstream" / "app.db"
    if db.is_file():
        from ..app.accounts import Accounts
        from ..app.store import Store

        store = Store(db)
        try:
            if Accounts(store).any_user():
                return True
        finally:
            store.close()
    raise ValueError(f"--host {host}: other machines could reach the app, and it has no accounts: add a user "
                     f"first (samstream app users add NAME --data {data}), or serve on 127.0.0.1")


def run(args) -> int:
    data = Path(args.data)
    if not data.is_dir():
        raise NotADirectoryError(f"--data {args.data}: not a folder")
    require_login = check_host(args.host, data)
    try:
        import uvicorn

        from ..app.server import create_app
    except ImportError as e:
        if (e.name or "").split(".")[0] not in APP_EXTRA:
            raise
        raise ValueError(f"the app needs its extra dependencies ({e.name} is missing): "
                         "pip install 'samstream[app]'") from None
    import torch

    from ..load import load_model

    _check_port(args.host.strip("[]"), args.port)
    dev = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_model(args.model, device=dev)
    app = create_app(data, model, model_name=args.model or "built-in", max_upload_bytes=args.max_upload_mb * 2**20,
                     require_login=require_login, precision=args.precision)
    print(f"samstream app: serving {data.resolve()} on {url(args.host, args.port)} (Ctrl-C to stop)", flush=True)
    # uvicorn.Server, not uvicorn.run (which swallows Ctrl-C): after its graceful shutdown a signal is raised
    # again, so the command ends as the others do (130 on Ctrl-C, 143 on SIGTERM)
    server = uvicorn.Server(uvicorn.Config(app, host=args.host.strip("[]"), port=args.port, log_level="warning",
                                           access_log=False))
    server.run()
    print("samstream app: stopped", file=sys.stderr)
    return 0
