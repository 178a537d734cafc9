"""`evpipe serve`: the app in a browser for the owner (issue 14), on textual-serve, locked down.

Each browser tab is one app process (`evpipe serve-session`, run by textual-serve on its web
driver), opening on the review screen. What keeps everyone else out, all in `Guard` (an aiohttp
middleware in front of every request, the websocket's included):

- a random access token, printed as a link at start (or one per user, `--user-token NAME=TOKEN`);
  the first request that carries it gets a cookie (HttpOnly, SameSite=Strict) and is redirected to
  the bare address, so the token leaves the address bar; a request with neither is refused (403);
- a websocket whose Origin is not the address the browser reached the server at is refused (403),
  and so is a request naming any host but a loopback one, unless `--public` (no DNS rebinding);
- at most `--max-sessions` app processes at once; the next browser is told that it is full (503).

Read-only by default: the app process is started read-only (write keys hidden, the store refuses
writes, SQLite opens the file read-only). With `--allow-writes` each browser names its user once (a
form, or the name its `--user-token` carries), and that name reaches the app process as EVPIPE_USER,
so changes are journaled under it, never under the server's account. The server listens on
127.0.0.1 unless `--host` names another address together with `--public` (and then warns).
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from evpipe.models.errors import DomainError

from .main import Ctx, domain_errors, fail, pass_ctx

if TYPE_CHECKING:
    from aiohttp import web

# Every evpipe command loads this module, the app included: what only a server needs is imported
# when it is used. html's tables of entities are 0.7 MiB; hmac and secrets import hashlib, which
# loads OpenSSL's libcrypto where it can (the app leaves it out: tui/cli/main.py leave_out_openssl).


def escape(text: str) -> str:
    """`text` as HTML text (html.escape)."""
    from html import escape as html_escape

    return html_escape(text)


def token_urlsafe(nbytes: int) -> str:
    """A random token for a link or a cookie (secrets.token_urlsafe)."""
    from secrets import token_urlsafe as make

    return make(nbytes)


#: The screens an owner opens on (the board, screen 8, joins them when it exists).
OWNER_SCREENS = ("review", "forecast", "trend", "board", "pipeline", "focus", "activity")
COOKIE = "evpipe_session"
MAX_NAME = 60
#: A per-user token shorter than this is refused: it could be guessed.
MIN_TOKEN = 16


@dataclass
class Browser:
    """One browser that showed a valid token: who it is (None until it names itself)."""

    user: str | None


@dataclass
class Access:
    """Who may come in: the shared token (None when there are per-user tokens), the per-user
    tokens (token -> name), and the browsers that came in (cookie -> Browser)."""

    token: str | None
    users: dict[str, str] = field(default_factory=dict)
    browsers: dict[str, Browser] = field(default_factory=dict)

    def admit(self, offered: str) -> Browser | None:
        """A new browser for a valid token, else None (compared in constant time)."""
        import hmac

        if self.token is not None and hmac.compare_digest(offered.encode(), self.token.encode()):
            return Browser(None)
        for token, name in self.users.items():
            if hmac.compare_digest(offered.encode(), token.encode()):
                return Browser(name)
        return None

    def links(self, base: str) -> list[tuple[str | None, str]]:
        """(user or None, link) for every way in."""
        if self.token is not None:
            return [(None, f"{base}/?token={self.token}")]
        return [(name, f"{base}/?token={token}") for token, name in self.users.items()]


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def same_origin(origin: str, host: str) -> bool:
    """Whether a request's Origin is the address the browser reached this server at. A malformed
    one ('http://[::1') is not: it gave a 500 and a traceback in the server's log, not the refusal."""
    try:
        return bool(origin) and urlsplit(origin).netloc == host
    except ValueError:
        return False


def parse_user_tokens(pairs: tuple[str, ...]) -> dict[str, str]:
    """`--user-token NAME=TOKEN` options as token -> name; one clear line for a bad one."""
    from evpipe.models.values import clean_text

    users: dict[str, str] = {}
    for pair in pairs:
        name, sep, token = pair.partition("=")
        name = clean_text(name, field="--user-token name", max_len=MAX_NAME)
        if not sep or not name:
            raise DomainError("--user-token: NAME=TOKEN, such as --user-token sam=<a long random token>")
        if len(token) < MIN_TOKEN or not all(c.isalnum() or c in "-_" for c in token):
            raise DomainError(
                f"--user-token {name}: the token needs at least {MIN_TOKEN} letters, digits, - or _ "
                "(python3 -c 'import secrets; print(secrets.token_urlsafe())' makes one)"
            )
        if token in users:
            raise DomainError(f"--user-token {name}: that token is {users[token]}'s already")
        users[token] = name
    return users


def session_command(url: str, screen: str, read_only: bool) -> str:
    """The shell command textual-serve runs for each browser: this evpipe's app, on the web driver
    (`exec`: the app is the process textual-serve started, so stopping it stops the app)."""
    words = ["exec", sys.executable, "-m", "evpipe.tui.cli", "--db", url, "serve-session", "--screen", screen]
    if read_only:
        words.append("--read-only")
    return "exec " + " ".join(shlex.quote(w) for w in words[1:])


def page(title: str, body: str, status: int = 200) -> web.Response:
    """A small page of our own (refusals, the name form), every piece of text escaped by the caller."""
    from aiohttp import web

    html = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;"
        "margin:3rem auto;padding:0 1rem;color:#222}input,button{font:inherit;padding:.4rem .6rem}</style>"
        f"</head><body>{body}</body></html>"
    )
    return web.Response(text=html, status=status, content_type="text/html", headers=SECURITY_HEADERS)


#: Sent with every page: no framing, no referrer to other sites, no sniffing, no caching.
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def make_server(
    command: str,
    *,
    host: str,
    port: int,
    access: Access,
    max_sessions: int,
    allow_writes: bool,
    public: bool,
    label: str,
):
    """The textual-serve Server, with the guard in front and sessions counted (built here, so that
    textual-serve is imported only by `evpipe serve`)."""
    from aiohttp import web
    from textual_serve.app_service import AppService
    from textual_serve.server import Server

    class UserAppService(AppService):
        """One app process, run as the browser's user (EVPIPE_USER), never as the server's account."""

        def __init__(self, *args: Any, user: str | None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.user = user

        def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
            environment = super()._build_environment(width=width, height=height)
            environment.pop("EVPIPE_USER", None)
            if self.user is not None:
                environment["EVPIPE_USER"] = self.user
            elif allow_writes:  # never reached: a writing browser has named itself (the guard)
                raise RuntimeError("a browser that may write has no user name")
            else:
                environment["EVPIPE_USER"] = "viewer"
            return environment

    class EvpipeServer(Server):
        def __init__(self) -> None:
            super().__init__(command, host=host, port=port, title="evpipe")
            self.access = access
            self.max_sessions = max_sessions
            self.sessions = 0
            #: The app processes running now, ended when the server stops.
            self.services: set[AppService] = set()

        def initialize_logging(self) -> None:
            import logging

            logging.basicConfig(level=logging.WARNING, format="evpipe serve: %(message)s")

        async def _make_app(self) -> web.Application:
            app = web.Application(middlewares=[self.guard])
            app.add_routes(
                [
                    web.get("/", self.handle_index, name="index"),
                    web.post("/name", self.handle_name, name="name"),
                    web.get("/ws", self.handle_websocket, name="websocket"),
                    # what the app delivers to the browser (the palette's screenshot), behind the
                    # guard as every page: without it the screenshot never arrived
                    web.get("/download/{key}", self.handle_download, name="download"),
                    web.static("/static", self.statics_path, name="static"),
                ]
            )
            app.on_shutdown.append(self.end_sessions)
            return app

        def serve(self, debug: bool = False) -> None:
            """textual-serve's `serve`, but the link is printed once the server listens: printed
            at start-up, it showed before a port already in use failed the bind, so the owner got
            a link (to whatever held the port) and "Ctrl+C stops it." above the error."""
            import asyncio
            import signal

            self.debug = debug
            self.initialize_logging()
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            for number in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(number, self.request_exit)
                except NotImplementedError:  # pragma: no cover - not on Linux
                    pass
            web.run_app(
                self._make_app(),
                host=host,
                port=port,
                handle_signals=False,
                loop=loop,
                print=lambda *_: self.announce(),  # aiohttp calls it once every site is listening
            )

        def announce(self) -> None:
            shown = f"[{host}]" if ":" in host else host
            base = f"http://{shown}:{port}"
            mode = "changes allowed, each journaled under its browser's user" if allow_writes else "read-only"
            click.echo(f"evpipe serve: {label} on {base} ({mode}; at most {max_sessions} sessions)")
            for user, link in self.access.links(base):
                click.echo(f"  {user + ': ' if user else 'open '}{link}")
            click.echo("Ctrl+C stops it.")
            sys.stdout.flush()

        # ------------------------------------------------------------ the guard

        @web.middleware
        async def guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
            if not public and not is_loopback(request.url.host or ""):
                return page("evpipe", "<p>This evpipe answers only at its loopback address.</p>", 403)
            offered = request.query.get("token")
            if offered is not None:
                browser = self.access.admit(offered)
                if browser is None:
                    return refused("That token is not this server's.")
                if request.path != "/" or request.method != "GET":
                    return refused("The token goes in the link to the start page.")
                cookie = token_urlsafe(32)
                self.access.browsers[cookie] = browser
                response = web.HTTPSeeOther("/", headers=SECURITY_HEADERS)
                response.set_cookie(COOKIE, cookie, httponly=True, samesite="Strict", path="/")
                return response
            browser = self.access.browsers.get(request.cookies.get(COOKIE, ""))
            if browser is None:
                return refused("Open the link `evpipe serve` printed: it carries the access token.")
            changes = request.method != "GET" or request.path == "/ws"
            if changes and not same_origin(request.headers.get("Origin", ""), request.host):
                return page("evpipe", "<p>Refused: this request came from another site.</p>", 403)
            request["browser"] = browser
            return await handler(request)

        # ------------------------------------------------------------ pages

        async def handle_index(self, request: web.Request) -> web.StreamResponse:
            browser: Browser = request["browser"]
            if allow_writes and browser.user is None:
                return name_form()
            if self.sessions >= self.max_sessions:
                return full(self.max_sessions)
            ws_scheme = "wss" if request.scheme == "https" else "ws"
            return app_page(f"{ws_scheme}://{request.host}/ws", label, browser.user)

        async def handle_name(self, request: web.Request) -> web.StreamResponse:
            from evpipe.models.values import clean_text

            form = await request.post()
            name = clean_text(str(form.get("name", "")), field="name", max_len=10_000).strip()
            if not name or len(name) > MAX_NAME:
                return name_form(f"A name of 1 to {MAX_NAME} characters, please.")
            browser: Browser = request["browser"]
            if browser.user is None:  # named once: a browser does not rename itself
                browser.user = name
            raise web.HTTPSeeOther("/", headers=SECURITY_HEADERS)

        async def handle_websocket(self, request: web.Request) -> web.StreamResponse:
            browser: Browser = request["browser"]
            if allow_writes and browser.user is None:
                return page("evpipe", "<p>Name yourself first.</p>", 403)
            if self.sessions >= self.max_sessions:
                return full(self.max_sessions)
            self.sessions += 1
            try:
                return await self._run_session(request, browser)
            finally:
                self.sessions -= 1

        async def _run_session(self, request: web.Request, browser: Browser) -> web.StreamResponse:
            import asyncio

            websocket = web.WebSocketResponse(heartbeat=15)
            width = _int(request.query.get("width"), 80)
            height = _int(request.query.get("height"), 24)
            service: AppService | None = None
            try:
                await websocket.prepare(request)
                service = UserAppService(
                    self.command,
                    write_bytes=websocket.send_bytes,
                    write_str=websocket.send_str,
                    close=websocket.close,
                    download_manager=self.download_manager,
                    debug=False,
                    user=browser.user,
                )
                self.services.add(service)
                await service.start(width, height)
                await self._process_messages(websocket, service)
            except asyncio.CancelledError:
                await websocket.close()
            except (ValueError, AssertionError, TypeError, KeyError, IndexError):  # a message we do not read
                await websocket.close(code=1003, message=b"evpipe: a message this server does not understand")
            finally:
                if service is not None:
                    await service.stop()
                    self.services.discard(service)
            return websocket

        async def end_sessions(self, app: web.Application) -> None:
            """The server is stopping: every app process is asked to quit, and ended if it does not."""
            import asyncio

            for service in list(self.services):
                try:
                    await asyncio.wait_for(service.stop(), timeout=5)
                except (TimeoutError, RuntimeError, OSError):
                    process = service._process
                    if process is not None and process.returncode is None:
                        process.kill()

    def refused(why: str) -> web.Response:
        return page("evpipe: no access", f"<h1>No access</h1><p>{escape(why)}</p>", 403)

    def full(n: int) -> web.Response:
        return page(
            "evpipe: full",
            f"<h1>Full</h1><p>All {n} sessions of this evpipe are in use. Close one (another tab?) "
            "and reload this page.</p>",
            503,
        )

    def name_form(problem: str = "") -> web.Response:
        note = f'<p role="alert">{escape(problem)}</p>' if problem else ""
        return page(
            "evpipe: who are you?",
            "<h1>Who are you?</h1><p>Changes you make are recorded under this name.</p>"
            f'{note}<form method="post" action="/name"><label>Your name <input name="name" '
            f'maxlength="{MAX_NAME}" required autofocus></label> <button>Open evpipe</button></form>',
        )

    return EvpipeServer()


def _int(text: str | None, default: int) -> int:
    try:
        return max(10, min(int(text or default), 1000))
    except ValueError:
        return default


def app_page(websocket_url: str, label: str, user: str | None) -> web.Response:
    """The page that runs the app: textual-serve's terminal (its own script and styles, served
    from /static; no outside fonts), connected to our websocket."""
    from aiohttp import web

    who = f" · {user}" if user else ""
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>evpipe · {escape(label)}{escape(who)}</title>
<link rel="stylesheet" href="/static/css/xterm.css">
<script src="/static/js/textual.js"></script>
<style>
@font-face {{ font-family: "Roboto Mono"; src: url("/static/fonts/RobotoMono-VariableFont_wght.ttf"); }}
html, body {{ margin: 0; height: 100%; background: #0c181f; }}
.textual-terminal {{ width: 100vw; height: 100vh; }}
.closed {{ display: none; position: absolute; inset: 0; align-items: center; justify-content: center;
  color: #eee; font: 18px system-ui, sans-serif; background: #0c181f; z-index: 10; }}
body.-closed .closed {{ display: flex; }}
</style></head>
<body>
<div class="closed"><p>This evpipe session has ended. Reload the page to start another.</p></div>
<div id="terminal" class="textual-terminal" data-session-websocket-url="{escape(websocket_url)}"
 data-font-size="16"></div>
</body></html>"""
    return web.Response(text=html, content_type="text/html", headers=SECURITY_HEADERS)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--allow-writes", is_flag=True, help="Let browsers change the pipeline, each under its user's name.")
@click.option("--public", is_flag=True, help="Allow --host to be other than loopback (anyone who can reach it).")
@click.option("--max-sessions", type=click.IntRange(1, 32), default=4, show_default=True, help="App processes at once.")
@click.option(
    "--user-token",
    "user_tokens",
    multiple=True,
    metavar="NAME=TOKEN",
    help="A link of its own for one user (repeat for each); replaces the shared token.",
)
@click.option("--screen", type=click.Choice(OWNER_SCREENS), default="review", show_default=True)
@pass_ctx
@domain_errors
def serve_cmd(
    ctx: Ctx,
    host: str,
    port: int,
    allow_writes: bool,
    public: bool,
    max_sessions: int,
    user_tokens: tuple[str, ...],
    screen: str,
) -> None:
    """The app in a browser, for the owner: read-only unless --allow-writes, behind an access
    token. Reach it through an SSH tunnel: ssh -L 8000:127.0.0.1:8000 office."""
    try:
        import aiohttp  # noqa: F401
        import textual_serve  # noqa: F401
    except ImportError:
        fail("serve needs the web extra: pip install 'evpipe[web]'")
    if not is_loopback(host) and not public:
        raise DomainError(
            f"--host {host}: not a loopback address; anyone who can reach it could try to get in. "
            "Add --public if you mean it (an SSH tunnel is safer: the README says how)"
        )
    if not is_loopback(host):
        click.echo(
            f"warning: listening on {host}, not only on this machine: anyone who can reach it and has a "
            "link gets in; an SSH tunnel to 127.0.0.1 is safer",
            err=True,
        )
    users = parse_user_tokens(user_tokens)
    from evpipe.models.locations import db_label

    url = ctx.url
    ctx.engine.dispose()  # the database is there and at the newest schema before any browser comes
    access = Access(None if users else token_urlsafe(24), users)
    server = make_server(
        session_command(url, screen, read_only=not allow_writes),
        host=host,
        port=port,
        access=access,
        max_sessions=max_sessions,
        allow_writes=allow_writes,
        public=public,
        label=db_label(url),
    )
    try:
        server.serve()
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


@click.command("serve-session", hidden=True)
@click.option("--screen", type=click.Choice(OWNER_SCREENS), default="review")
@click.option("--read-only", is_flag=True)
@pass_ctx
@domain_errors
def serve_session_cmd(ctx: Ctx, screen: str, read_only: bool) -> None:
    """One browser session of `evpipe serve` (textual-serve starts it on its web driver)."""
    if "TEXTUAL_DRIVER" not in os.environ:
        fail("serve-session is what `evpipe serve` runs for each browser; run `evpipe serve`")
    from evpipe.models.locations import check_database

    check_database(ctx.url)
    from ..app import EvpipeApp, settle_allocator
    from ..escape_burst import read_escape_apart

    settle_allocator()
    read_escape_apart()
    EvpipeApp(ctx.url, screen=screen, read_only=read_only, in_browser=True).run()


def register(group: click.Group) -> None:
    group.add_command(serve_cmd)
    group.add_command(serve_session_cmd)
