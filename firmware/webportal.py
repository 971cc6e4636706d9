# The Wi-Fi face, mounted by web.create(extra=...): the captive portal and
# the Wi-Fi state.
#
#   GET  /api/wifi          mode, state, why it is down, address, signal, the
#                           set-up network, the last scan, NTP (no passwords)
#   GET  /setup             the set-up page (setuppage.py, imported on the
#                           first visit: it costs RAM only once someone uses it)
#   POST /setup             save a network (form), then join it; or, with
#                           the form's "scan" button, list the networks again
#   in set-up mode, any other path, or any path of another host (a name
#   our DNS resolved to us): 302 to the set-up page; else 404
#                           (JSON, as web.py's). That covers the connectivity
#                           checks of Android (/generate_204), Apple
#                           (/hotspot-detect.html), Windows (/ncsi.txt,
#                           /connecttest.txt, /redirect), Firefox
#                           (/canonical.html) and whatever else a phone or a
#                           typed address asks: the phone offers to open the
#                           set-up page. (The 404 handler, mounted after
#                           web.py's, and a before-request check of the Host
#                           header: no route table entry per probe path.)
import views
import web
from microdot import Microdot  # pyright: ignore[reportMissingImports]

HTML = "text/html; charset=UTF-8"


def create(wifi, control, clock, root):
    """The sub-app; `wifi` the WifiTask, `root` the storage directory
    (settings.json)."""
    app = Microdot()

    def to_setup():
        wifi.client_seen(clock.ticks_ms())
        return web.Reply("", 302, {"Location": wifi.setup_url(), "Cache-Control": "no-store"}, "Found")

    @app.errorhandler(404)
    async def captive(request):
        if not wifi.m.setup_mode():
            return web.error(404, "not found")
        return to_setup()

    @app.before_request
    async def foreign_host(request):
        # In set-up mode a request for another site's page (its name
        # resolved to us) goes to the set-up page, whatever its path.
        if wifi.m.setup_mode():
            host = request.headers.get("Host")
            if host and not wifi.is_own_host(host):
                return to_setup()
        return None

    @app.get("/api/wifi")
    async def wifi_get(request):
        d = wifi.describe(clock.ticks_ms())
        return web.streamed(request, lambda w: views.dict_doc(w, d))

    @app.get("/setup")
    async def setup_page(request):
        import setuppage

        now = clock.ticks_ms()
        if wifi.m.setup_mode():
            wifi.client_seen(now)
        return web.streamed(request, lambda w: setuppage.render(w, wifi, control, now, None), HTML)

    @app.post("/setup")
    async def setup_save(request):
        import setuppage

        return await setuppage.save(request, wifi, control, clock, root)

    return app
