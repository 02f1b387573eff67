"""The `inferwatch` command: serve, and manage workspaces with or without a running server."""

from __future__ import annotations

import inspect
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, get_type_hints
from urllib.parse import quote

import httpx
import typer
from rich.console import Console
from rich.table import Table

from inferwatch import bootstrap, workspaces
from inferwatch.config import SETTINGS, Settings, env_of, flag_of
from inferwatch.diskspace import Floor
from inferwatch.errors import ApiError
from inferwatch.image_store import open_image_store
from inferwatch.store import open_store
from inferwatch.store.base import Store, StoreLocked, WorkspaceRecord

app = typer.Typer(help="Self-hosted model monitoring for computer-vision inference.", no_args_is_help=True)
workspace_app = typer.Typer(help="Create and list workspaces, rotate their API keys.", no_args_is_help=True)
app.add_typer(workspace_app, name="workspace")
key_app = typer.Typer(help="Named API keys with scopes: create, list, revoke, set an expiry.", no_args_is_help=True)
app.add_typer(key_app, name="key")
# What the commands print is plain text: no colours guessed from numbers and paths in it.
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

_FIELDS = {f.name: f for f in SETTINGS}
_TYPES = get_type_hints(Settings)


def _option(name: str) -> Any:
    """A setting as a Typer option: its flag, environment variable, help and minimum."""
    f = _FIELDS[name]
    return typer.Option(flag_of(f), envvar=env_of(f), help=f.metadata["help"], min=f.metadata["low"])


DataDir = Annotated[Path, _option("data_dir")]
StoreUrl = Annotated[str | None, _option("store_url")]
DEFAULT_DATA_DIR = Settings().data_dir


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", markup=True)
    return typer.Exit(1)


def _open(settings: Settings) -> tuple[Store, int]:
    try:
        store = open_store(settings.resolved_store_url)
    except StoreLocked:
        info = bootstrap.read_server_file(settings)
        where = f" (a server said it listens at {info['url']})" if info else ""
        raise _fail(f"the store {settings.resolved_store_url} is in use by another process{where}") from None
    return store, store.migrate()


def serve(**options: Any) -> None:
    """Start the server (API and dashboard) on the chosen store."""
    import gc
    import logging

    import pyarrow
    import uvicorn

    from inferwatch.protocol import with_deadlines
    from inferwatch.server import create_app

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings(**options)
    try:
        Floor.parse(settings.min_free_space)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    host, port = settings.host, settings.port
    if settings.smtp_url:
        from inferwatch.alerts.channels import Smtp

        try:
            Smtp.from_url(settings.smtp_url, settings.smtp_from)
        except ValueError as exc:
            raise _fail(str(exc)) from None
    try:
        open_image_store(settings.image_store, settings.data_dir)
    except Exception as exc:  # obstore raises its own error types for a URL it cannot use
        raise _fail(f"cannot use the image store {settings.image_store!r}: {exc}") from None
    opened, version = _open(settings)
    slug, key = bootstrap.ensure_workspace(settings, opened)
    base = f"http://{bootstrap.connect_host(host)}:{port}"
    console.print(f"[bold]inferwatch[/bold] serving {settings.resolved_store_url}")
    console.print(f"  dashboard: {base}/")
    console.print(f"  API docs:  {base}/docs")
    if settings.proxy_upstream:
        console.print(f"  proxy:     {base}/proxy -> {settings.proxy_upstream}")
    console.print(f"  workspace: {slug}")
    if key:
        console.print(f"  API key:   {key}")
        # Opens the dashboard signed in: the link carries the key, the page swaps it for a cookie.
        console.print(f"  sign in:   {base}/signin?api_key={quote(key, safe='')}", soft_wrap=True)
    else:
        console.print("  API key:   (rotated since first start; `inferwatch workspace rotate-key` makes a new one)")
    sys.stdout.flush()
    # Every DuckDB call gives up the GIL and takes it back a few times; at the default 5 ms switch
    # interval each take waits behind the event loop's decoding, which starved the writer (a 1 ms
    # commit took 20 ms under load; the Vision Events write, which takes it back over a hundred
    # times a commit, runs at a shorter one still, `store/duckdb/gil.py`). Objects alive after
    # start-up never become garbage: freezing them keeps every collection short. Both concern the
    # whole process, so they are made here.
    sys.setswitchinterval(0.0002)
    admin_token = secrets.token_urlsafe(32)
    served = create_app(settings, opened, version, admin_token)
    # pyarrow imports pandas, where installed, on its first conversion: the first commit. Made
    # now, before the freeze, the first ingest does not wait for it and the full collections,
    # which ingest's churn sets off every few seconds, do not scan its modules.
    pyarrow.array([])
    gc.freeze()
    # A batch of 100 events makes some 1,300 container objects that live until it is answered,
    # and the young generation is collected when those alive pass the threshold: with 16 batches
    # in flight, some 20,000. At the default (700) that was twice a request; at 10,000 still 18
    # collections a second, each holding the GIL: 0.9 s of a 17 s run, to find 29 objects of
    # garbage in 300,000 events. At 100,000 there were none (batch create +8 % at the median of
    # eight alternating pairs, docs/performance.md); the cyclic garbage it may hold back is at
    # most 100,000 objects, some 10 to 20 MB.
    gc.set_threshold(100_000, 10, 10)
    bootstrap.write_server_file(settings, admin_token)
    try:
        uvicorn.run(served, host=host, port=port, log_level="warning",
                    access_log=False, loop="uvloop", timeout_keep_alive=int(settings.keep_alive_timeout_s),
                    http=with_deadlines(settings.header_timeout_s, settings.body_timeout_s))
    finally:
        bootstrap.remove_server_file(settings, admin_token)
        opened.close()


# `serve` takes every setting as an option, made from its declaration in config.py.
serve.__annotations__ = {f.name: Annotated[_TYPES[f.name], _option(f.name)] for f in SETTINGS}
serve.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=_FIELDS[name].default, annotation=hint)
     for name, hint in serve.__annotations__.items()])
app.command()(serve)


def _server(settings: Settings) -> tuple[str, str] | None:
    """The running server's URL and admin token, if one answers for this data dir."""
    info = bootstrap.read_server_file(settings)
    if not info:
        return None
    url, token = str(info.get("url")), str(info.get("admin_token"))
    try:
        httpx.get(f"{url}/healthz", timeout=3).raise_for_status()
    except httpx.HTTPError:
        return None
    return url, token


def _admin(settings: Settings, method: str, path: str, body: dict[str, Any] | None = None,
           timeout: float = 30) -> dict[str, Any] | None:
    """Asks the running server; None when there is none (the caller opens the store itself)."""
    server = _server(settings)
    if server is None:
        return None
    url, token = server
    reply = httpx.request(method, f"{url}/admin{path}", json=body, timeout=timeout,
                          headers={"Authorization": f"Bearer {token}"})
    data: dict[str, Any] = reply.json()
    if reply.status_code != 200:
        raise _fail(str(data.get("detail") or data.get("error")))
    return data


def _change(settings: Settings, path: str, body: dict[str, Any] | None,
            direct: Callable[[Store], tuple[WorkspaceRecord, str]]) -> dict[str, Any]:
    """A workspace change: through the running server, else on the store opened here."""
    reply = _admin(settings, "POST", path, body)
    if reply is not None:
        return reply
    opened, _ = _open(settings)
    try:
        ws, key = direct(opened)
    except ApiError as exc:
        raise _fail(str(exc.detail)) from None
    finally:
        opened.close()
    return {"slug": ws.slug, "api_key": key}


def _rotate(settings: Settings, store: Store, name: str) -> tuple[WorkspaceRecord, str]:
    changed = workspaces.rotate(store, name)
    bootstrap.initial_key(settings, store)  # forgets the first key if it was this one
    return changed


@workspace_app.command("create")
def workspace_create(
    name: str,
    api_key: Annotated[str | None, typer.Option("--api-key", help="Use this key (e.g. an existing Roboflow key).")]
    = None,
    scopes: Annotated[str, typer.Option("--scopes", help="The first key's scopes, comma separated.")]
    = ",".join(workspaces.SCOPES),
    data_dir: DataDir = DEFAULT_DATA_DIR,
    store: StoreUrl = None,
) -> None:
    """Create a workspace and print its API key (named `default`, every scope unless told)."""
    settings = Settings(data_dir=data_dir, store_url=store)
    chosen = _scopes(scopes)
    reply = _change(settings, "/workspaces", {"slug": name, "api_key": api_key, "scopes": list(chosen)},
                    lambda opened: workspaces.create(opened, name, api_key, chosen))
    console.print(f"workspace {reply['slug']} created; API key:")
    print(reply["api_key"])


@workspace_app.command("list")
def workspace_list(data_dir: DataDir = DEFAULT_DATA_DIR, store: StoreUrl = None) -> None:
    """List workspaces."""
    settings = Settings(data_dir=data_dir, store_url=store)
    reply = _admin(settings, "GET", "/workspaces")
    if reply is None:
        opened, _ = _open(settings)
        try:
            rows = [{"slug": ws.slug, "created_at": ws.created_at.isoformat()} for ws in opened.workspaces()]
        finally:
            opened.close()
    else:
        rows = reply["workspaces"]
    table = Table("workspace", "created")
    for row in rows:
        table.add_row(row["slug"], row["created_at"])
    console.print(table)


@workspace_app.command("rotate-key")
def workspace_rotate(name: str, data_dir: DataDir = DEFAULT_DATA_DIR, store: StoreUrl = None) -> None:
    """Replace a workspace's API key; the old key stops working at once."""
    settings = Settings(data_dir=data_dir, store_url=store)
    reply = _change(settings, f"/workspaces/{name}/rotate-key", None, lambda opened: _rotate(settings, opened, name))
    console.print(f"new API key of {reply['slug']}:")
    print(reply["api_key"])


@app.command()
def backup(
    to: Annotated[Path, typer.Option("--to", help="A new or empty folder for the backup.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    store: StoreUrl = None,
) -> None:
    """Copy the store (consistent, even while the server runs) and the uploaded images into a folder."""
    from inferwatch import backup as backups

    settings = Settings(data_dir=data_dir, store_url=store)
    target = to.resolve()
    reply = _admin(settings, "POST", "/backup", {"to": str(target)}, timeout=3600)
    if reply is None:  # no server: this process takes the store's lock, so nothing writes meanwhile
        opened, version = _open(settings)
        try:
            backups.copy_store(opened, backups.store_path(settings), target, version)
        except (backups.BackupError, OSError) as exc:
            raise _fail(str(exc)) from None
        finally:
            opened.close()
        images = backups.copy_images(settings, target)
    else:
        images = int(reply["images"])
    console.print(f"backup of {settings.resolved_store_url} written to {target} ({images} image files)")


@app.command()
def restore(
    from_: Annotated[Path, typer.Option("--from", help="A folder written by `inferwatch backup`.")],
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite the data dir's store.")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    store: StoreUrl = None,
) -> None:
    """Put a backup into a data dir on which no server runs (stop it first)."""
    from inferwatch import backup as backups

    settings = Settings(data_dir=data_dir, store_url=store)
    if _server(settings) is not None:
        raise _fail(f"a server is running on {data_dir}: stop it before restoring")
    try:
        if backups.store_path(settings).exists():
            opened, _ = _open(settings)  # fails clearly if another process holds the store
            opened.close()
        backups.restore(from_, settings, replace)
    except (backups.BackupError, OSError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"restored {from_} into {settings.resolved_store_url}")


@app.command("migrate")
def migrate_store(
    from_: Annotated[str, typer.Option("--from", help="The DuckDB store: duckdb:///path/inferwatch.duckdb")],
    to: Annotated[str, typer.Option("--to", help="clickhouse://user:pass@host:8123/db or chdb:///path")],
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", min=1000, help="Inferences per insert.")] = 50_000,
) -> None:
    """Copy an embedded store into ClickHouse, resumably: run it again to go on after a stop.

    The DuckDB file is read-only meanwhile, but a server running on it holds its lock: stop it.
    """
    from urllib.parse import urlparse

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from inferwatch.store.clickhouse import ClickHouseStore
    from inferwatch.store.clickhouse.importer import copy_store, open_source

    source = urlparse(from_)
    if source.scheme != "duckdb":
        raise _fail(f"--from must be a duckdb:///path URL, got {from_!r}")
    try:
        con = open_source(source.path)
    except StoreLocked:
        raise _fail(f"{from_} is in use by another process (stop the server on it first)") from None
    except FileNotFoundError:
        raise _fail(f"no store at {source.path}") from None
    try:
        target = open_store(to)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if not isinstance(target, ClickHouseStore):
        raise _fail(f"--to must be a clickhouse:// or chdb:/// URL, got {to!r}")
    columns = (TextColumn("inferences"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=err) as bar:
            task = bar.add_task("copy", total=None)
            copied = copy_store(con, str(Path(source.path).resolve()), target, chunk_rows,
                                lambda done, total: bar.update(task, completed=done, total=total))
    finally:
        con.close()
        target.close()
    resumed = f", resumed after {copied.resumed_at:,}" if copied.resumed_at else ""
    console.print(
        f"copied {copied.workspaces} workspaces, {copied.inferences:,} inferences ({copied.new_inferences:,} new"
        f"{resumed}), {copied.metadata:,} metadata values, {copied.devices:,} devices, {copied.images:,}"
        f" images, {copied.settings:,} settings (ground truth, alert rules and states, retention) and"
        f" {copied.alert_events:,} alert events, {copied.vision_events:,} Vision Events use cases and events into {to}")


@app.command()
def demo(
    rate: Annotated[float, typer.Option(min=0.1, max=5000, help="Live inferences a second.")] = 5.0,
    hours_back: Annotated[float, typer.Option("--hours-back", min=0, max=24 * 90,
                                              help="Hours of history sent first, in bulk.")] = 24.0,
    url: Annotated[str | None, typer.Option(help="The server; default: the one running on --data-dir.")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="INFERWATCH_API_KEY",
                                                help="Workspace key; default: the first start's key.")] = None,
    duration: Annotated[float | None, typer.Option(min=0, help="Stop after this many seconds of live traffic.")]
    = None,
    count: Annotated[int | None, typer.Option(min=0, help="Stop after this many live inferences.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the random traffic, for a repeatable run.")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Fill a running server with realistic traffic: three factories, 24 cameras, three models,
    inspections attached as metadata, and one camera whose confidence drifts down."""
    from inferwatch import demo as demo_traffic

    url, api_key = _server_and_key(url, api_key, data_dir)
    try:
        demo_traffic.run(url, api_key, rate=rate, hours_back=hours_back, duration=duration, count=count,
                         seed=seed, say=lambda line: console.print(line, markup=False, soft_wrap=True))
    except demo_traffic.DemoError as exc:
        raise _fail(str(exc)) from None


@app.command("export-dataset")
def export_dataset(
    out: Annotated[Path, typer.Argument(help="The zip to write.")],
    format: Annotated[str, typer.Option("--format", help="coco or yolo.")] = "coco",
    filter_: Annotated[list[str] | None, typer.Option(
        "--filter", "-f", help="A filter of the inference list, NAME=VALUE (repeatable): model_id, device_id,"
                               " class, tag, min_confidence, max_confidence, from, to, meta.<field>.")] = None,
    url: Annotated[str | None, typer.Option(envvar="INFERWATCH_URL",
                                            help="The server; default: the one running on --data-dir.")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="INFERWATCH_API_KEY",
                                                help="Workspace key; default: the first start's key.")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Write the filtered inferences' images, with the model's predictions as pre-annotations,
    as a COCO or YOLO dataset zip for a labelling tool."""
    from inferwatch.sdk.client import Client, InferwatchError

    params: list[tuple[str, str]] = []
    for term in filter_ or []:
        name, sep, value = term.partition("=")
        if not sep or not name:
            raise _fail(f"a filter is NAME=VALUE, got {term!r}")
        params.append((name, value))
    url, api_key = _server_and_key(url, api_key, data_dir)
    client = Client(url, api_key)
    try:
        written = client.export_dataset(out, format=format, params=params)
    except InferwatchError as exc:
        raise _fail(str(exc)) from None
    finally:
        client.close()
    console.print(f"wrote {written:,} bytes to {out}", markup=False)


def _server_and_key(url: str | None, api_key: str | None, data_dir: Path) -> tuple[str, str]:
    """The URL and key given, else the running server of the data dir and its first key."""
    settings = Settings(data_dir=data_dir)
    if url is None:
        server = _server(settings)
        if server is None:
            raise _fail(f"no running server found for {data_dir} (start one with `make run` or"
                        " `inferwatch serve`), or give --url and --api-key")
        url = server[0]
    if api_key is None:
        try:
            api_key = settings.initial_key_file.read_text().strip()
        except OSError:
            raise _fail(f"no API key: {settings.initial_key_file} is gone (the first key was rotated);"
                        " give --api-key") from None
    return url, api_key


@app.command()
def proxy(
    upstream: Annotated[str, typer.Option(envvar="INFERWATCH_UPSTREAM",
                                          help="The inference server, e.g. http://127.0.0.1:9001.")],
    server: Annotated[str, typer.Option(envvar="INFERWATCH_URL", help="inferwatch, e.g. http://127.0.0.1:8420.")],
    api_key: Annotated[str, typer.Option("--api-key", envvar="INFERWATCH_API_KEY",
                                         help="The inferwatch workspace key results are recorded with.")],
    listen: Annotated[str, typer.Option(envvar="INFERWATCH_PROXY_LISTEN", help="HOST:PORT to listen on.")]
    = "127.0.0.1:9002",
    workspace: Annotated[str | None, typer.Option(help="The key's workspace; default: asked from the server.")]
    = None,
    spool_dir: Annotated[Path | None, typer.Option("--spool-dir", envvar="INFERWATCH_SPOOL_DIR",
                                                   help="Where results wait while inferwatch is down;"
                                                        " default under ~/.cache/inferwatch.")] = None,
) -> None:
    """Run the transparent inference proxy: point InferenceHTTPClient at it instead of the inference
    server, and every inference is recorded in inferwatch (queued; inferwatch being down never
    fails an inference)."""
    from inferwatch.proxy.serve import KeyRefused, probe_workspace, run_proxy

    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise _fail(f"--listen must be HOST:PORT, not {listen!r}")
    console.print(f"[bold]inferwatch proxy[/bold] http://{host}:{port} -> {upstream}, recording to {server}")
    if workspace is None:
        try:
            workspace = probe_workspace(server, api_key)
        except KeyRefused as exc:
            raise _fail(str(exc)) from None
        if workspace is None:
            console.print(f"  inferwatch at {server} does not answer now: results wait in the spool until it does")
    if workspace is not None:
        console.print(f"  workspace: {workspace}")
    sys.stdout.flush()
    run_proxy(upstream, server, api_key, host=host.strip("[]"), port=int(port), workspace=workspace,
              spool_dir=spool_dir)


# -- named keys ------------------------------------------------------------------------------------

def _scopes(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _on_store(settings: Settings, slug: str, fn: Callable[[Store, int], Any]) -> Any:
    """Runs a key command on the store opened here (no server runs), with the workspace's id."""
    opened, _ = _open(settings)
    try:
        ws = next((w for w in opened.workspaces() if w.slug == slug), None)
        if ws is None:
            raise _fail(f"no workspace {slug!r}")
        return fn(opened, ws.id)
    except ApiError as exc:
        raise _fail(str(exc.detail)) from None
    finally:
        opened.close()


def _expiry_text(text: str | None) -> str | None:
    return None if text is None or text.lower() in ("", "never", "none") else text


Workspace = Annotated[str, typer.Argument(help="The workspace.")]
KeyRef = Annotated[str, typer.Argument(help="The key's id or name.")]


@key_app.command("create")
def key_create(
    workspace: Workspace,
    name: Annotated[str, typer.Argument(help="A name saying where the key lives, e.g. `line-3-camera`.")],
    scopes: Annotated[str, typer.Option("--scopes", help="Comma separated: ingest, read, manage.")] = "ingest",
    expires: Annotated[str | None, typer.Option("--expires", help="When it stops working (ISO 8601).")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    store: StoreUrl = None,
) -> None:
    """Create a named key and print it: it is shown this once, and stored only hashed."""
    from inferwatch.query.filters import parse_time

    settings = Settings(data_dir=data_dir, store_url=store)
    body = {"name": name, "scopes": list(_scopes(scopes)), "expires_at": _expiry_text(expires)}
    reply = _admin(settings, "POST", f"/workspaces/{quote(workspace, safe='')}/keys", body)
    if reply is None:
        def direct(opened: Store, ws: int) -> dict[str, Any]:
            at = body["expires_at"]
            when = parse_time(at, "expires").replace(tzinfo=None) if isinstance(at, str) else None
            record, key = workspaces.add_key(opened, ws, name, _scopes(scopes), when, workspaces.CLI_ACTOR)
            return {**workspaces.describe_key(record), "api_key": key}
        reply = _on_store(settings, workspace, direct)
    console.print(f"key {reply['name']} ({', '.join(reply['scopes'])}) of {workspace}:")
    print(reply["api_key"])


@key_app.command("list")
def key_list(workspace: Workspace, data_dir: DataDir = DEFAULT_DATA_DIR, store: StoreUrl = None) -> None:
    """List a workspace's keys: name, scopes, created, last used, expiry, revoked."""
    settings = Settings(data_dir=data_dir, store_url=store)
    reply = _admin(settings, "GET", f"/workspaces/{quote(workspace, safe='')}/keys")
    rows = reply["keys"] if reply is not None else _on_store(
        settings, workspace, lambda opened, ws: [workspaces.describe_key(k) for k in opened.api_keys(ws)])
    table = Table("id", "name", "scopes", "created", "last used", "expires", "revoked")
    for row in rows:
        table.add_row(row["id"], row["name"], ",".join(row["scopes"]), row["created_at"], row["last_used_at"] or "",
                      row["expires_at"] or "", row["revoked_at"] or "")
    Console(width=200).print(table)  # whole times, even in a narrow terminal or a pipe


@key_app.command("revoke")
def key_revoke(workspace: Workspace, key: KeyRef, data_dir: DataDir = DEFAULT_DATA_DIR,
               store: StoreUrl = None) -> None:
    """Revoke a key: refused from the next request on, and its dashboard sessions end."""
    settings = Settings(data_dir=data_dir, store_url=store)
    reply = _admin(settings, "DELETE", f"/workspaces/{quote(workspace, safe='')}/keys/{quote(key, safe='')}")
    if reply is None:
        def direct(opened: Store, ws: int) -> dict[str, Any]:
            revoked = workspaces.revoke_key(opened, ws, key, workspaces.CLI_ACTOR)
            bootstrap.initial_key(settings, opened)  # forgets the first key if it was this one
            return workspaces.describe_key(revoked)
        reply = _on_store(settings, workspace, direct)
    console.print(f"key {reply['name']} of {workspace} revoked")


@key_app.command("expire")
def key_expire(
    workspace: Workspace,
    key: KeyRef,
    at: Annotated[str, typer.Option("--at", help="When it stops working (ISO 8601), or `never`.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    store: StoreUrl = None,
) -> None:
    """Set (or clear, with `--at never`) when a key stops working."""
    from inferwatch.query.filters import parse_time

    settings = Settings(data_dir=data_dir, store_url=store)
    text = _expiry_text(at)
    reply = _admin(settings, "PATCH", f"/workspaces/{quote(workspace, safe='')}/keys/{quote(key, safe='')}",
                   {"expires_at": text})
    if reply is None:
        def direct(opened: Store, ws: int) -> dict[str, Any]:
            when = parse_time(text, "at").replace(tzinfo=None) if text else None
            return workspaces.describe_key(workspaces.set_expiry(opened, ws, key, when, workspaces.CLI_ACTOR))
        reply = _on_store(settings, workspace, direct)
    console.print(f"key {reply['name']} of {workspace} expires {reply['expires_at'] or 'never'}")
