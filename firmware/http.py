# The HTTP face (microdot): the status page, the JSON API and BMS commands.
#
#   GET  /              self-refreshing status page
#   GET  /api/status    {"link": {...}, "live": bool, "generation": n, "status": {...}}
#                       ?since=n&wait_ms=ms waits until the model changed
#   GET  /api/events    the newest entries of the event log
#   GET  /api/health    heap, uptime, task crashes, settings error
#   POST /api/command   {"command": "charge-off"} with "Authorization: Bearer TOKEN"
#
# Control needs the API token from settings.json (no token configured =
# control disabled). Bodies are bounded; malformed input is a 400 with the
# reason, never an exception.
import asyncio
import json

from link.command import Command

import hw
import page
import statusview
from pooledbody import HTML, PooledResponse, json_response
from microdot import Microdot, Request, Response  # pyright: ignore[reportMissingImports]  (deployed as .mpy, no stubs)

_MAX_BODY = 256  # a command is a few dozen bytes
_MAX_WAIT_MS = 30000  # longest long poll
_JSON = {"Content-Type": "application/json"}

Request.max_content_length = _MAX_BODY
Request.max_body_length = _MAX_BODY
Request.max_readline = 1024
_wait_for = asyncio.wait_for  # asyncio loads it lazily: do it now, on an unfragmented heap


def _error(status, reason):
    return Response({"ok": False, "reason": reason}, status, _JSON)


def _token_matches(header, token):
    # Compare every byte so the time does not tell how much of a guess was right.
    expected = "Bearer " + token
    if header is None or len(header) != len(expected):
        return False
    diff = 0
    for i in range(len(expected)):
        diff |= ord(header[i]) ^ ord(expected[i])
    return diff == 0


def create(ctx):
    app = Microdot()

    @app.get("/")
    async def index(request):
        doc = statusview.status_doc(ctx.engine, hw.ticks_ms())
        return PooledResponse(lambda out: page.render(doc, out), HTML)

    @app.get("/api/status")
    async def status(request):
        # Long poll: ?since=GENERATION answers when the model has moved on
        # (or after wait_ms), woken by the link task's `changed` event.
        since = request.args.get("since")
        if since is not None and since == str(ctx.model.generation):
            try:
                wait_ms = int(request.args.get("wait_ms", "10000"))
            except ValueError:
                return _error(400, "wait_ms must be an integer")
            try:
                await _wait_for(ctx.changed.wait(), min(max(wait_ms, 0), _MAX_WAIT_MS) / 1000)
            except asyncio.TimeoutError:
                pass
        return json_response(statusview.status_doc(ctx.engine, hw.ticks_ms()))

    @app.get("/api/events")
    async def events(request):
        return json_response(statusview.events_doc(ctx.log, hw.ticks_ms()))

    @app.get("/api/health")
    async def health(request):
        return json_response(statusview.health_doc(ctx.supervisor, ctx.settings))

    @app.post("/api/command")
    async def command(request):
        token = ctx.settings.api_token
        if not token:
            return _error(403, "control is disabled: set api_token in settings.json")
        if not _token_matches(request.headers.get("Authorization"), token):
            return Response({"ok": False, "reason": "missing or wrong API token"}, 401, {"WWW-Authenticate": "Bearer"})
        try:
            body = json.loads(request.body.decode())
        except (ValueError, UnicodeError):
            return _error(400, "malformed JSON body")
        if not isinstance(body, dict) or not isinstance(body.get("command"), str):
            return _error(400, 'expected {"command": NAME}')
        return await run_command(ctx, body["command"])

    return app


async def run_command(ctx, name):
    """Submit a BMS command and wait for its result (or our own deadline)."""
    done = asyncio.Event()
    try:
        cmd = Command(name, lambda c: done.set())
    except ValueError:
        return _error(400, "unknown command: " + name)
    ctx.engine.submit(cmd, hw.ticks_ms())
    wait_s = (ctx.settings.link.command_timeout_ms + 2000) / 1000
    try:
        await _wait_for(done.wait(), wait_s)
    except asyncio.TimeoutError:
        pass
    d = cmd.describe()
    if not cmd.finished():
        d["reason"] = "no result within " + str(int(wait_s)) + " s"
    return d


async def serve(ctx, app):
    await app.start_server(host=hw.http_host(), port=hw.http_port(ctx.settings.http_port))
