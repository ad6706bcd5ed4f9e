"""`threadline serve` and `threadline keys ...`; `app.cli` mounts these on the main app."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from threadline.access.errors import RequestError
from threadline.access.keys import dump_scopes, new_key, open_key_store
from threadline.app.commands.ledger import config as _config

keys_app = typer.Typer(help="Adapter API keys (shown once, stored hashed).", no_args_is_help=True)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def serve(
    host: Annotated[str | None, typer.Option(help="address to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="default 8000")] = None,
    access_log: Annotated[bool, typer.Option(help="log one line per request")] = True,
    exit_with_parent: Annotated[
        bool,
        typer.Option(
            "--exit-with-parent", help="stop when the parent process (e.g. `make run`) exits"
        ),
    ] = False,
) -> None:
    """Serve the HTTP API, live streams and the widget (SQLite unless THREADLINE_DATABASE_URL
    says otherwise)."""
    import uvicorn

    from threadline.app.bootstrap import bootstrap
    from threadline.channels.http.app import create_app

    config = _config()
    settings = config.channels
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if exit_with_parent:
        from threadline.app.commands.parent import exit_with_parent as arrange

        arrange()
    try:
        services = bootstrap(config)
    except Exception as exc:  # a one-line reason, not a traceback, for a bad configuration
        _fail(f"cannot start: {type(exc).__name__}: {exc}")
        return
    _preload_voice(services)  # before the app: its voice routes share these providers
    app = create_app(services)
    bind_host, bind_port = host or settings.host, settings.port if port is None else port
    logging.getLogger("threadline").info(
        "widget demo page: http://%s:%s/embed", bind_host, bind_port
    )
    sys.setswitchinterval(settings.switch_interval_ms / 1000)
    uvicorn.run(
        app,
        host=bind_host,
        port=bind_port,
        access_log=access_log,
        log_level="info",
        # Open SSE streams would otherwise hold a shutdown forever.
        timeout_graceful_shutdown=3,
        server_header=False,
    )


def _preload_voice(services: object) -> None:
    """Loads the offline speech models while the server starts, so the first call's first
    audio does not wait seconds for them; an unavailable provider is said in one line by
    the voice sessions (and legs get 503)."""
    from threadline.app.bootstrap import voice_providers
    from threadline.channels.voice.providers import preload

    if not _config().voice.voice_preload:
        return
    try:
        preload(*voice_providers(services))  # type: ignore[arg-type]
    except Exception as exc:  # voice is optional: the rest of the server still runs
        logging.getLogger("threadline").warning("voice providers: %s", exc)


@keys_app.command("create")
def create_key(
    name: Annotated[str, typer.Option(help="who uses the key, e.g. sms-adapter")],
    tenant: Annotated[str, typer.Option(help="the tenant whose conversations it reaches")] = (
        "default"
    ),
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="an extra right, repeatable: data-subjects (POST /v1/data-subjects/export|"
            "erase, a privacy officer's key)"
        ),
    ] = None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    settings = _config().channels
    try:
        token, record = new_key(name, tenant, scope or ())
        store = open_key_store(settings.database_url)
        try:
            store.add(record)
        finally:
            store.close()
    except RequestError as exc:
        _fail(str(exc))
        return
    except Exception as exc:  # database errors: one line, never the key
        _fail(f"{type(exc).__name__}: {exc}")
        return
    typer.echo(token)
    scopes = f", scopes {dump_scopes(record.scopes)}" if record.scopes else ""
    typer.echo(
        f"key {record.key_id} ({record.name}, tenant {record.tenant}{scopes}) created; "
        "store it now, it is not shown again",
        err=True,
    )


@keys_app.command("list")
def list_keys() -> None:
    """List keys (ids, names, tenants, states, creation times, scopes; never secrets)."""
    store = open_key_store(_config().channels.database_url)
    try:
        for r in store.list():
            state = "revoked" if r.revoked else "active"
            typer.echo(
                f"{r.key_id}\t{r.name}\t{r.tenant}\t{state}\t{r.created_at.isoformat()}"
                f"\t{dump_scopes(r.scopes) or '-'}"
            )
    finally:
        store.close()


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="the key id shown by `keys list`")],
) -> None:
    """Revoke a key (takes effect within 30 s on running servers)."""
    store = open_key_store(_config().channels.database_url)
    try:
        if not store.revoke(key_id):
            _fail(f"no key with id {key_id}")
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")


def standalone() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)
    register(app)
    return app


if __name__ == "__main__":
    standalone()()
