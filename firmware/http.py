# The HTTP face (microdot): the status page, the JSON API and BMS commands.
#
#   GET  /              self-refreshing status page
#   GET  /api/status    {"link": {...}, "live": bool, "generation": n, "status": {...}}
#                       ?since=n&wait_ms=ms waits until the model changed
#   GET  /api/events    the newest entries of the event log
#   GET  /api/health    heap, uptime, task crashes, settings error
#   POST /api/command   {"command": "charge-off"} with "Authorization: Bearer TOKEN"
#   GET  /api/outputs   DO1-DO3: state, why, pins, sense (outputs.Outputs)
#   POST /api/outputs   {"output": 0|"charger", "action": "on"|"off"|"auto"|"release"|
#                       "reset"|"mode", "mode": ..., "expiry_s": n, "persist": bool}
#   POST /api/acc/wake  pulse ACC now
#   POST /api/flags     {"flag": n, "on": bool}: the rules' {"flag": n} inputs
#   GET  /api/energy    kWh/Ah counters, power, time to empty/full
#
# Control needs the API token from settings.json (no token configured =
# control disabled). Bodies are bounded; malformed input is a 400 with the
# reason, never an exception.
import asyncio
import json

import schema
from link.command import Command

import hw
import page
import statusview
from outputs import ACTIONS
from pooledbody import HTML, PooledResponse, json_response
from microdot import Microdot, Request, Response  # pyright: ignore[reportMissingImports]  (deployed as .mpy, no stubs)

_MAX_BODY = 256  # a command is a few dozen bytes
_DRAIN_MAX = 4096  # of a refused body, read and dropped so the client gets its 413
_DRAIN_CHUNK = 256
_MAX_WAIT_MS = 30000  # longest long poll
_JSON = {"Content-Type": "application/json"}

Request.max_content_length = _MAX_BODY
Request.max_body_length = _MAX_BODY
Request.max_readline = 1024
_wait_for = asyncio.wait_for  # asyncio loads it lazily: do it now, on an unfragmented heap


def _error(status, reason):
    return Response({"ok": False, "reason": reason}, status, _JSON)


def _token_matches(header, token):
    # The time depends on the token's length alone: it tells neither how
    # much of a guess was right nor how long the token is.
    expected = "Bearer " + token
    if header is None:
        header = ""
    n = len(header)
    diff = n ^ len(expected)
    for i in range(len(expected)):
        diff |= (ord(header[i]) if i < n else 0x100) ^ ord(expected[i])
    return diff == 0


def _check_token(ctx, request):
    """None when the request may control the bridge, else the error response."""
    token = ctx.settings.api_token
    if not token:
        return _error(403, "control is disabled: set api_token in settings.json")
    if not _token_matches(request.headers.get("Authorization"), token):
        return Response({"ok": False, "reason": "missing or wrong API token"}, 401, {"WWW-Authenticate": "Bearer"})
    return None


def _control_request(ctx, request):
    """(body, None) for an authorised request with a JSON object, else
    ({}, error response)."""
    denied = _check_token(ctx, request)
    if denied is not None:
        return {}, denied
    try:
        body = json.loads(request.body.decode())
    except (ValueError, UnicodeError):
        return {}, _error(400, "malformed JSON body")
    if not isinstance(body, dict):
        return {}, _error(400, "expected a JSON object")
    return body, None


def _bad(e):
    return _error(400, e.path + ": " + e.reason)


def create(ctx):
    app = Microdot()

    @app.errorhandler(413)
    async def too_large(request):
        # microdot refuses the body unread; closing a socket with unread
        # input resets the connection, and the client may lose the reply.
        # Read (a bounded part of) it first.
        left = request.content_length if request.content_length < _DRAIN_MAX else _DRAIN_MAX
        try:
            while left > 0:
                chunk = await request.stream.read(left if left < _DRAIN_CHUNK else _DRAIN_CHUNK)
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass
        return _error(413, "body over " + str(_MAX_BODY) + " bytes")

    @app.before_request
    async def seen(request):
        ctx.client_ms = hw.ticks_ms()  # a client is connected (the ACC keep-awake "client" mode)

    @app.get("/")
    async def index(request):
        doc = statusview.status_doc(ctx, hw.ticks_ms())
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
        return json_response(statusview.status_doc(ctx, hw.ticks_ms()))

    @app.get("/api/events")
    async def events(request):
        return json_response(statusview.events_doc(ctx.log, hw.ticks_ms()))

    @app.get("/api/health")
    async def health(request):
        return json_response(statusview.health_doc(ctx.supervisor, ctx.settings, ctx.store))

    @app.post("/api/command")
    async def command(request):
        body, err = _control_request(ctx, request)
        if err is not None:
            return err
        if not isinstance(body.get("command"), str):
            return _error(400, 'expected {"command": NAME}')
        return await run_command(ctx, body["command"])

    @app.get("/api/outputs")
    async def outputs_get(request):
        now = hw.ticks_ms()
        return json_response({"outputs": ctx.outputs.describe_all(now), "flags": list(ctx.flags)})

    @app.post("/api/outputs")
    async def outputs_post(request):
        body, err = _control_request(ctx, request)
        if err is not None:
            return err
        outs = ctx.outputs
        try:
            schema.obj(body, "", ("output", "action", "mode", "expiry_s", "persist"))
            if "output" not in body:
                raise schema.ConfigError("output", "required")
            action = schema.string(body, "action", "", None, ACTIONS)
            mode = schema.string(body, "mode", "", "", ("off", "on", "auto"))
            if action == "mode" and not mode:
                raise schema.ConfigError("mode", "required with action mode")
            expiry = schema.number(body, "expiry_s", "", 0.0, 0.0, 259200.0)
            persist = schema.boolean(body, "persist", "", False)
        except schema.ConfigError as e:
            return _bad(e)
        try:
            i = outs.index(body["output"])
        except ValueError as e:
            return _error(400, str(e))
        now = hw.ticks_ms()
        try:
            outs.command(i, action, mode, expiry or None, persist, now)
        except ValueError as e:
            return _error(400, str(e))
        return json_response({"ok": True, "output": outs.describe(i, now)})

    @app.post("/api/acc/wake")
    async def acc_wake(request):
        denied = _check_token(ctx, request)
        if denied is not None:
            return denied
        now = hw.ticks_ms()
        ctx.acc.wake(now)
        return json_response({"ok": True, "acc": ctx.acc.acc.describe(now)})

    @app.post("/api/flags")
    async def flags(request):
        body, err = _control_request(ctx, request)
        if err is not None:
            return err
        try:
            schema.obj(body, "", ("flag", "on"))
            n = schema.integer(body, "flag", "", None, 0, len(ctx.flags) - 1)
            on = schema.boolean(body, "on", "", None)
        except schema.ConfigError as e:
            return _bad(e)
        ctx.flags[n] = 1 if on else 0
        ctx.outputs.step(hw.ticks_ms())
        return json_response({"ok": True, "flags": list(ctx.flags)})

    @app.get("/api/energy")
    async def energy(request):
        return json_response(ctx.outputs.energy.describe())

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
