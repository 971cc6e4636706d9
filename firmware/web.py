# The web face: microdot routes on the hub (reads) and the control service
# (actions), as mounted sub-apps:
#
#   GET  /               the dashboard (dashboard.py: one gzipped static page)
#   GET  /lite           the plain status page without JavaScript (page.py)
#   GET  /api/status     the whole state (?since=GENERATION&wait_ms=MS: long poll)
#   GET  /api/events     the event log, each entry with its sentence
#   GET  /api/health     tasks, heap, uptime, settings/state errors, safe mode
#   GET  /api/outputs    DO1-DO3 in detail, and the flags
#   GET  /api/energy     energy counters, power, time estimates
#   GET  /metrics        Prometheus text format, from the field catalog
#   GET  /api/history    the last hour for the dashboard's chart (lib/history.py)
#   GET  /api/stream     Server-Sent Events: the status on every change
#   POST /api/command    {"command": "charge-off"} (dangerous ones: opt-in + "confirm")
#   POST /api/outputs    {"output": 0|"charger", "action": ..., ...}
#   POST /api/flags      {"flag": n, "on": bool}
#   POST /api/acc/wake   pulse ACC now
#
# Every error is JSON {"ok": false, "reason": ...} with its status (400, 401,
# 403, 404, 405, 413, 431, 503). POSTs need "Authorization: Bearer TOKEN".
# Responses are streamed from a per-request buffer (views.py).
import gc
import json

import catalog as C
from control import ControlError
from eventlog import WHO_HTTP
from jsonout import JsonOut

import history as history_mod
import views
from microdot import Microdot, Request, Response  # pyright: ignore[reportMissingImports]  (deployed as .mpy, no stubs)
import microdot.microdot as _md  # pyright: ignore[reportMissingImports]

JSON = "application/json"
_MAX_WAIT_MS = 30000  # longest long poll
_COMMAND_BODY = 256  # a command is a few dozen bytes
_DRAIN_MAX = 4096  # of a refused body, read and dropped so the client gets its 413
_PING_MS = 15000  # an idle event stream gets a comment this often
_BUF = 512  # per-request response buffer
_MIN_FREE = 6144  # heap a request needs to be answered whole (else 503 at once, never a cut-off reply)
_HAS_MEM = hasattr(gc, "mem_free")

Request.max_content_length = 16384  # the largest body any route takes (the settings upload)
Request.max_body_length = _COMMAND_BODY  # larger bodies stay in the stream for their route
Request.max_readline = 1024


def _one_line(exc):
    # microdot prints a traceback for a request it could not parse or a
    # handler that raised; one line is enough (and cheaper on a device).
    print("http:", type(exc).__name__, exc)


_md.print_exception = _one_line


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 413: "Payload Too Large", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}


class _Body:
    """The body as an async iterator, made once per response (microdot's
    own body_iter() defines a class on every call)."""

    def __init__(self, body):
        self.body = body
        self.done = False

    def __aiter__(self):
        return self

    async def __anext__(self):
        body = self.body
        if hasattr(body, "__next__"):
            try:
                return next(body)
            except StopIteration:
                raise StopAsyncIteration
        if self.done or not body:
            raise StopAsyncIteration
        self.done = True
        return body


class Reply(Response):
    """A microdot Response written with less garbage: one write for the
    status line and the headers, and no class made per body."""

    def body_iter(self):
        body = self.body
        return body if hasattr(body, "__anext__") else _Body(body)

    async def write(self, stream):
        self.complete()
        head = ["HTTP/1.0 ", str(self.status_code), " ", self.reason or _REASONS.get(self.status_code, "N/A"), "\r\n"]
        for name, value in self.headers.items():
            head.append(name)
            head.append(": ")
            head.append(str(value))
            head.append("\r\n")
        head.append("\r\n")
        try:
            await stream.awrite("".join(head).encode())
            head = None
            if not self.is_head:
                it = self.body_iter()
                async for chunk in it:
                    await stream.awrite(chunk.encode() if isinstance(chunk, str) else chunk)
                close = getattr(it, "aclose", None)
                if close is not None:
                    await close()
        except OSError:
            pass  # the client went away: nothing to answer


def error(status, reason):
    return Reply(json.dumps({"ok": False, "reason": reason}), status, {"Content-Type": JSON})


def writer(request):
    """The connection's own response writer (httpserver.Conn.out), or a new
    one (microdot's test client has no connection)."""
    conn = request.sock[0] if request is not None and request.sock else None
    w = getattr(conn, "out", None)
    if w is None:
        return JsonOut(_BUF)
    w.reset()
    return w


def streamed(request, producer_factory, content_type=JSON, status=200):
    """A response written piece by piece: producer_factory(w) is a views
    generator writing into the connection's writer."""
    w = writer(request)
    return Reply(w.chunks(producer_factory(w)), status, {"Content-Type": content_type})


async def _drain(request, limit):
    left = request.content_length if request.content_length < _DRAIN_MAX else _DRAIN_MAX
    stream = request.stream
    try:
        while stream is not None and left > 0:
            chunk = await stream.read(left if left < 256 else 256)
            if not chunk:
                break
            left -= len(chunk)
    except OSError:
        pass
    return error(413, "body over " + str(limit) + " bytes")


class EventStream:
    """The body of /api/stream: the status document as an SSE event now and
    on every change (coalesced: a slow client gets the newest, never a
    queue), a comment when idle."""

    def __init__(self, hub, sub, now_fn, w):
        self.hub = hub
        self.sub = sub
        self.now_fn = now_fn
        self._chunks = None
        self._w = w
        self._first = True

    def __aiter__(self):
        return self

    async def __anext__(self):
        while True:
            if self._chunks is not None:
                try:
                    return next(self._chunks)
                except StopIteration:
                    self._chunks = None
                    return b"\n\n"
            if self._first:
                self._first = False
            else:
                if not self.sub.pending:
                    await self.sub.wakeup.within(_PING_MS)
                if not self.sub.take():
                    return b": ping\n\n"
            w = self._w
            w.reset()
            w.text(b"event: status\ndata: ")
            self._chunks = w.chunks(views.status_doc(w, self.hub, self.now_fn()))

    async def aclose(self):
        self.sub.close()


class Routes(Microdot):
    """Microdot with its routes found by exact path in one dict: every path
    here is fixed, so no regular expression is compiled (each would stay in
    RAM) and a request tries no pattern (each try allocates)."""

    def mount(self, subapp, url_prefix="", local=False):
        # Sub-apps are mounted non-local (their handlers apply app-wide), so
        # once their routes are in the table neither they nor microdot's
        # url_map entries are needed.
        Microdot.mount(self, subapp, url_prefix, local)
        table = getattr(self, "table", {})
        for methods, pattern, handler, prefix, _sub in self.url_map:
            table.setdefault(pattern.url_pattern, []).append((methods, handler, prefix, None))
        self.table = table
        self.url_map = []
        subapp.url_map = []

    def find_route(self, req):
        method = "GET" if req.method == "HEAD" else req.method
        req.url_args = {}
        entries = self.table.get(req.path)
        if entries is None:
            return 404, "", None
        for methods, handler, prefix, sub in entries:
            if method in methods:
                return handler, prefix, sub
        return 405, entries[0][2], entries[0][3]


def create(hub, control, clock, health, on_client=None, names=(), commands=(), extra=(), history=None):
    """The microdot app. `health()`: the /api/health dict; `on_client(now)`:
    a request came in (ACC keep-awake "client" mode); `extra`: more
    sub-apps (other faces' routes), mounted after these; `history`: the
    history.History the outputs task fills (None: no /api/history)."""
    app = Routes()
    reads = Microdot()
    actions = Microdot()
    live = Microdot()

    # -- every request ---------------------------------------------------------------------

    @app.before_request
    async def before(request):
        conn = request.sock[0] if request.sock else None
        if conn is not None and hasattr(conn, "handling"):
            if conn.refused:
                return error(conn.refused, "request header fields too large")
            conn.handling()
        if on_client is not None:
            on_client(clock.ticks_ms())
        if _HAS_MEM and gc.mem_free() < _MIN_FREE:
            gc.collect()
            if gc.mem_free() < _MIN_FREE:
                return error(503, "low on memory, try again")
        return None

    for code, why in ((400, "malformed request"), (404, "not found"), (405, "method not allowed"),
                      (500, "internal error")):
        def handler(request, code=code, why=why):
            return error(code, why)

        app.errorhandler(code)(handler)

    @app.errorhandler(413)
    async def too_large(request):
        return await _drain(request, Request.max_content_length)

    @app.errorhandler(MemoryError)
    async def no_memory(request, exc):
        return error(503, "out of memory, try again")

    # -- reads ------------------------------------------------------------------------------

    @reads.get("/api/status")
    async def status(request):
        since = request.args.get("since")
        if since is not None and since == str(hub.model.generation):
            try:
                wait_ms = int(request.args.get("wait_ms", "10000"))
            except ValueError:
                return error(400, "wait_ms must be an integer")
            wait_ms = min(max(wait_ms, 0), _MAX_WAIT_MS)
            try:
                sub = hub.subscribe(1 << C.P_STATUS | 1 << C.P_LINK)
            except ValueError:
                return error(503, "too many waiting clients")
            try:
                await sub.wakeup.within(wait_ms)
            finally:
                sub.close()
        now = clock.ticks_ms()
        return streamed(request, lambda w: views.status_doc(w, hub, now))

    @reads.get("/api/events")
    async def events(request):
        try:
            limit = int(request.args.get("limit", "32"))
        except ValueError:
            return error(400, "limit must be an integer")
        limit = min(max(limit, 1), 64)
        now = clock.ticks_ms()
        return streamed(request, lambda w: views.events_doc(w, hub.log, names, commands, now, limit))

    @reads.get("/api/health")
    async def health_route(request):
        d = health()
        return streamed(request, lambda w: views.dict_doc(w, d))

    @reads.get("/api/outputs")
    async def outputs_get(request):
        relays = hub.relays
        now = clock.ticks_ms()
        d = {"outputs": [relays.describe(i, now) for i in range(relays.count)], "flags": list(control.flags)}
        return streamed(request, lambda w: views.dict_doc(w, d))

    @reads.get("/api/energy")
    async def energy(request):
        d = hub.energy.describe()
        return streamed(request, lambda w: views.dict_doc(w, d))

    @reads.get("/metrics")
    async def metrics(request):
        now = clock.ticks_ms()
        return streamed(request, lambda w: views.metrics(w, hub, now), "text/plain; version=0.0.4")

    @reads.get("/")
    async def index(request):
        import dashboard  # loaded on the first visit (0.9 KB), not at boot

        status, headers, body = dashboard.respond(request.headers, writer(request)._out)
        if headers is None:
            return error(status, body)
        return Reply(body, status, headers, dashboard.REASONS.get(status))

    @reads.get("/lite")
    async def lite(request):
        import page  # the rarely used face: loaded on first use

        now = clock.ticks_ms()
        return streamed(request, lambda w: page.render(w, hub, now, health()), "text/html; charset=UTF-8")

    @reads.get("/api/history")
    async def history_route(request):
        if history is None:
            return error(404, "no history on this bridge")
        now = clock.ticks_ms()
        return streamed(request, lambda w: history_mod.doc(w, history, now))

    # -- the live stream ------------------------------------------------------------------------

    @live.get("/api/stream")
    async def stream(request):
        conn = request.sock[0] if request.sock else None
        try:
            sub = hub.subscribe(1 << C.P_STATUS | 1 << C.P_LINK | 1 << C.P_OUTPUTS | 1 << C.P_ACC
                                | 1 << C.P_ENERGY | 1 << C.P_HEALTH)
        except ValueError:
            return error(503, "too many live streams")
        if conn is not None and hasattr(conn, "stream_mode") and not conn.stream_mode():
            sub.close()
            return error(503, "too many live streams")
        return Reply(EventStream(hub, sub, clock.ticks_ms, writer(request)), 200,
                        {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})

    # -- actions (the control service) -------------------------------------------------------------

    def _body(request, limit):
        """The request's JSON object, or raise ControlError."""
        denied = control.authorize(request.headers.get("Authorization"))
        if denied is not None:
            raise denied
        if request.content_length > limit:
            raise ControlError(413, "body over " + str(limit) + " bytes")
        raw = request.body
        if not raw:
            return {}
        try:
            return json.loads(raw.decode())
        except (ValueError, UnicodeError):
            raise ControlError(400, "malformed JSON body")

    async def _act(request, action):
        try:
            body = _body(request, _COMMAND_BODY)
            result = action(body)
            if hasattr(result, "send"):  # a coroutine (a BMS command)
                result = await result
        except ControlError as e:
            if e.status == 413:
                return await _drain(request, _COMMAND_BODY)
            r = error(e.status, e.reason)
            if e.status == 401:
                r.headers["WWW-Authenticate"] = "Bearer"
            return r
        return streamed(request, lambda w: views.dict_doc(w, result))

    @actions.post("/api/command")
    async def command(request):
        return await _act(request, lambda body: control.command(body, WHO_HTTP))

    @actions.post("/api/outputs")
    async def outputs_post(request):
        return await _act(request, lambda body: {"ok": True, "output": control.output(body, WHO_HTTP,
                                                                                       clock.ticks_ms())})

    @actions.post("/api/flags")
    async def flags(request):
        return await _act(request, lambda body: {"ok": True, "flags": control.flag(body, WHO_HTTP, clock.ticks_ms())})

    @actions.post("/api/acc/wake")
    async def acc_wake(request):
        return await _act(request, lambda body: {"ok": True, "acc": control.wake(WHO_HTTP, clock.ticks_ms())})

    app.mount(reads)
    app.mount(live)
    app.mount(actions)
    for sub in extra:
        app.mount(sub)
    return app

