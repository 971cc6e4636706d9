# The set-up page (/setup) and its form: small server-rendered HTML a phone
# can use without JavaScript. Imported by webportal.py on the first visit.
#
# The page: what the Wi-Fi does now (and why it is down), the networks of
# the last scan with their signal, a form for the network name, its
# password, the bridge's hostname and the API token, and a rescan button.
# While a join runs the page reloads itself every 3 s, so the phone shows the
# outcome (the set-up network stays up AP_LINGER_MS after the join works).
#
# Saving needs the API token, like every change on the bridge (make deploy
# prints it). A bridge without a token (control off) takes a new one from
# this form, in set-up mode only: the first set-up, on the bridge's own
# network, chooses it.
# The form is merged into settings.json (settings.update(): read, change
# "wifi" and "api_token", check, write atomically), then the network is joined.
import sys

from eventtext import WIFI_REASONS
from wifistate import CONNECTING, JOINING, UP

import web

_FORM_MAX = 1024  # the form's fields are at most ~400 characters, encoded up to 3x
_MIN_TOKEN = 16
_STYLE = ("body{font-family:sans-serif;margin:1em;max-width:30em}label{display:block;margin:.6em 0}"
          "input[type=text],input[type=password]{width:100%;font-size:1.1em;padding:.3em;box-sizing:border-box}"
          "button{font-size:1.1em;padding:.4em 1em;margin:.5em 0}.bad{background:#c62828;color:#fff;padding:.5em}"
          ".ok{background:#2e7d32;color:#fff;padding:.5em}.note{background:#eee;padding:.5em}")
HTML = "text/html; charset=UTF-8"


def esc(s):
    s = str(s)
    if "&" not in s and "<" not in s and ">" not in s and '"' not in s and "'" not in s:
        return s  # (the common case: no copy)
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;").replace("'", "&#39;")


def bars(rssi):
    """The signal as 1-4 bars (what phones show)."""
    return "&#9602;&#9604;&#9606;&#9608;"[:7 * (4 if rssi >= -55 else 3 if rssi >= -67 else 2 if rssi >= -78 else 1)]


def _status(w, wifi, now):
    m = wifi.m
    if m.state == UP:
        ip = esc(wifi.ip or "")
        w.text("<p class='ok'>Connected to <b>")
        w.text(esc(wifi.ssid))
        w.text("</b> as ")
        w.text(ip)
        w.text(". Open <b>http://")
        w.text(esc(wifi.hostname))
        w.text(".local/</b> or <b>http://")
        w.text(ip)
        w.text("/</b>.")
        left = m.ap_left(now)
        if left >= 0:
            w.text(" This set-up network closes in ")
            w.text(str(left // 1000 + 1))
            w.text(" s.")
        w.text("</p>")
    elif m.state == JOINING or m.state == CONNECTING:
        w.text("<p class='note'>Joining <b>")
        w.text(esc(wifi.ssid))
        w.text("</b>&hellip;</p>")
    else:
        w.text("<p class='note'>Not connected")
        if wifi.ssid:
            w.text(" to <b>")
            w.text(esc(wifi.ssid))
            w.text("</b>")
        w.text(": ")
        w.text(WIFI_REASONS[m.reason] or WIFI_REASONS[m.setup_cause] or "not connected")
        w.text(".</p>")


def render(w, wifi, control, now, message):
    m = wifi.m
    w.text("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
           "<meta name='viewport' content='width=device-width,initial-scale=1'>")
    if m.state == JOINING or m.state == CONNECTING or m.ap_left(now) >= 0:
        w.text("<meta http-equiv='refresh' content='3;url=/setup'>")
    w.text("<title>antbridge set-up</title><style>")
    w.text(_STYLE)
    w.text("</style></head><body><h2>")
    w.text(wifi.ap_name)
    w.text(" Wi-Fi set-up</h2>")
    if message:
        w.text("<p class='bad'>")
        w.text(esc(message))
        w.text("</p>")
    if m.setup_mode() and not wifi.ap_password:
        w.text("<p class='bad'>This set-up network is open: what you type here crosses the air unencrypted. "
               "Give it a password (settings.json wifi.ap_password; make deploy sets one).</p>")
    _status(w, wifi, now)
    if w.full():
        yield
    w.text("<form method='post' action='/setup'><p>Network:</p>")
    for ssid, rssi, is_open in wifi.networks:
        name = esc(ssid)
        w.text("<label><input type='radio' name='ssid' value=\"")
        w.text(name)
        w.text("\" checked> " if ssid == wifi.ssid else "\"> ")
        w.text(name)
        w.text(" <span>")
        w.text(bars(rssi))
        w.text("</span> ")
        w.text(str(rssi))
        w.text(" dBm (open)</label>" if is_open else " dBm</label>")
        if w.full():
            yield
    if not wifi.networks:
        w.text("<p>(no scan yet)</p>")
    w.text("<label>Other network (name): <input type='text' name='other' maxlength='32' autocapitalize='none'>"
           "</label><label>Password: <input type='password' name='password' maxlength='64'></label>"
           "<label>Hostname: <input type='text' name='hostname' maxlength='32' autocapitalize='none' value=\"")
    w.text(esc(wifi.hostname))
    w.text("\"></label>")
    if w.full():
        yield
    if control.token:
        w.text("<label>API token (printed by make deploy): <input type='password' name='token' maxlength='128'>"
               "</label>")
    else:
        w.text("<label>Choose an API token (at least 16 characters; every change to the bridge will need it): "
               "<input type='text' name='token' maxlength='128' autocapitalize='none'></label>")
    w.text("<button type='submit'>Save and join</button></form>")
    if m.setup_mode():
        w.text("<form method='post' action='/setup'><button type='submit' name='scan' value='1'>Scan again"
               "</button></form>")
    w.text("<p><a href='/'>Status</a> &middot; <a href='/api/wifi'>/api/wifi</a></p></body></html>")
    if w.full():
        yield


def _fields(raw):
    """The form's fields (str -> str); ValueError when it is not one."""
    from microdot.microdot import urldecode  # pyright: ignore[reportMissingImports]

    fields = {}
    for pair in raw.split(b"&"):
        if not pair:
            continue
        key, _, value = pair.partition(b"=")
        try:
            fields[urldecode(key)] = urldecode(value)
        except (ValueError, UnicodeError):
            raise ValueError("the form is not valid (encoding)")
    return fields


def _page(request, wifi, control, now, status, message):
    return web.streamed(request, lambda w: render(w, wifi, control, now, message), HTML, status)


async def save(request, wifi, control, clock, root):
    now = clock.ticks_ms()
    if request.content_length > _FORM_MAX:
        return await web._drain(request, _FORM_MAX)
    if not (request.content_type or "").startswith("application/x-www-form-urlencoded"):
        return _page(request, wifi, control, now, 400, "Send the form from the set-up page.")
    raw = request.body
    if not raw and request.content_length:
        try:
            raw = await request.stream.readexactly(request.content_length)
        except (OSError, EOFError):
            return web.error(400, "the form was cut short")
    try:
        f = _fields(raw)
    except ValueError as e:
        return _page(request, wifi, control, now, 400, str(e))
    if "scan" in f:
        if wifi.m.setup_mode():  # (a scan stalls the radio ~2 s: not for the LAN to trigger)
            wifi.client_seen(now)
            wifi.rescan()
        return web.Reply("", 303, {"Location": "/setup"}, "See Other")
    token = f.get("token", "")
    new_token = None
    if control.token:
        denied = control.authorize("Bearer " + token)
        if denied is not None:
            return _page(request, wifi, control, now, denied.status, "Wrong API token: nothing was saved.")
    elif not wifi.m.setup_mode():
        return _page(request, wifi, control, now, 403, "This bridge has no API token: choose one in set-up mode.")
    elif len(token) < _MIN_TOKEN:
        return _page(request, wifi, control, now, 400, "Choose an API token of at least 16 characters.")
    else:
        new_token = token
    ssid = f.get("other", "").strip() or f.get("ssid", "")
    if not ssid:
        return _page(request, wifi, control, now, 400, "Choose a network or type its name.")
    password = f.get("password", "")
    hostname = f.get("hostname", "").strip().lower()
    import schema
    import settings

    try:
        settings.update(root, {"ssid": ssid, "password": password, "hostname": hostname}, new_token)
    except schema.ConfigError as e:
        return _page(request, wifi, control, now, 400, "Not saved: " + e.path + ": " + e.reason)
    except OSError as e:
        return _page(request, wifi, control, now, 500, "Could not save the settings: " + str(e))
    finally:
        del settings
        sys.modules.pop("settings", None)  # (as main.py: needed once in a while, not kept)
    if new_token is not None:
        control.token = new_token
    wifi.join(ssid, password, hostname, clock.ticks_ms())
    return web.Reply("", 303, {"Location": "/setup"}, "See Other")
