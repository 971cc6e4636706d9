# The BMS's own settings and log over HTTP: the vendor app's parameter
# screen and the PC software's system log. A sub-app that app.py hands to
# web.create(extra=...):
#
#   GET  /api/params         every parameter of the BMS's generation with its
#                            value, range and step ({"protocol", "read_at",
#                            "age_s", "reading", "error", "params": [...]});
#                            read from the BMS on the first request, then
#                            served from the cache with its time; ?refresh=1
#                            reads afresh (answered when done, or after 30 s
#                            with what has arrived and "reading": true). No
#                            token: reading changes nothing; one full read
#                            runs at a time (lib/paramctl.py).
#   POST /api/params         {"key", "value", "confirm": "write-param"} with
#                            the token; opt-in control.allow_commands
#                            "write-param". {"ok", "key", "value" (read back),
#                            "unit", "raw", "reason"}
#   GET  /api/bmslog         the BMS's system log: OLD frames carry one slot
#                            each (lib/ant/syslog.py); NEW: not offered
#
# At rest the firmware holds only these handlers: the documents
# (paramviews.py) and the parameter table load on the first request (and
# stay: a few hundred bytes), the job code for each action (lib/paramctl.py).
# Everything a reply needs is loaded before it starts: a MemoryError then
# answers 503, never a reply cut short.
import json

from control import ControlError
from eventlog import WHO_HTTP

import web
from microdot import Microdot  # pyright: ignore[reportMissingImports]  (deployed frozen, no stubs)

_BODY = 256


def create(hub, control, clock, link_task):
    """The sub-app. `link_task`: the bmslink.BmsLink whose `syslog` (an
    ant.syslog.SysLog, made on the first OLD frame) holds the BMS's log, or
    None (safe mode: no link)."""
    app = Microdot()

    @app.get("/api/params")
    async def params_get(request):
        import paramviews

        refresh = request.args.get("refresh") in ("1", "true")
        values = await control.param_read_all(WHO_HTTP, refresh)
        reading = control.param_reading()
        now = clock.ticks_ms()
        return web.streamed(request, lambda w: paramviews.params_doc(w, values, reading, now))

    @app.post("/api/params")
    async def params_post(request):
        try:
            denied = control.authorize(request.headers.get("Authorization"))
            if denied is not None:
                raise denied
            if request.content_length > _BODY:
                raise ControlError(413, "body over " + str(_BODY) + " bytes")
            raw = request.body
            try:
                body = json.loads(raw.decode()) if raw else {}
            except (ValueError, UnicodeError):
                raise ControlError(400, "malformed JSON body")
            d = await control.param_write(body, WHO_HTTP)
        except ControlError as e:
            if e.status == 413:
                return await web._drain(request, _BODY)  # pyright: ignore[reportPrivateUsage]
            r = web.error(e.status, e.reason)
            if e.status == 401:
                r.headers["WWW-Authenticate"] = "Bearer"
            return r
        import paramviews

        return web.streamed(request, lambda w: paramviews.write_doc(w, d))

    @app.get("/api/bmslog")
    async def bmslog(request):
        import paramviews

        protocol = hub.model.protocol
        log = link_task.syslog if link_task is not None else None
        return web.streamed(request, lambda w: paramviews.bmslog_doc(w, protocol, log))

    return app
