# End to end: Wi-Fi set-up from a phone, against the real firmware (frozen
# into the 32-bit MicroPython unix port at the heap `make run` uses) and the
# BMS simulator. The host runtime's fake radio (tools/hostrt/hw.py) joins the
# networks of an "air" file this test edits while the firmware runs, and
# logs what the firmware asks of the radio; the captive DNS responder
# listens on a UDP port of this machine; the phone's side is played by
# dnspython (an independent DNS implementation) and plain HTTP clients; a
# small NTP server here answers the firmware's clock requests. Through all of
# it the BMS link must keep its poll rhythm (within 10 %). CPython only.
import http.client
import json
import os
import socket
import struct
import threading
import time
import urllib.parse

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import pytest

import fwproc
from fwproc import TOKEN, wait_until

LINK = {"poll_ms": 250, "poll_floor_ms": 100, "listen_first_ms": 100}
POLL_S = 0.25  # how often the test looks: gently, the link's rhythm is being measured
HOME = {"ssid": "home", "password": "home-pass-123", "rssi": -61, "ip": "192.168.50.20"}
NEIGHBOUR = {"ssid": "neighbour <5G>", "password": "x" * 12, "rssi": -83}
AP_PASSWORD = "setup-pass-1"
NTP_UNIX_OFFSET = 2208988800  # RFC 5905: seconds from 1900 to 1970
# 2025-06-01 21:00:30 UTC (calendar.timegm; checked below): what the test's
# NTP server says. With tz_offset_min 60 it is 22:00:30 local time.
NTP_TIME = 1748811630


def udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Air:
    """The fake radio's world: the networks in range (written atomically;
    the firmware re-reads the file when it changes) and its action log."""

    def __init__(self, tmp_path, networks):
        self.path = os.path.join(str(tmp_path), "air.json")
        self.log = os.path.join(str(tmp_path), "radio.log")
        self.version = int(time.time())
        self.set(networks)

    def set(self, networks):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"networks": networks, "join_ms": 300}, f)
        self.version += 1  # the fake radio re-reads the file when its mtime (whole seconds) changes
        os.utime(tmp, (self.version, self.version))
        os.replace(tmp, self.path)

    def actions(self):
        """[(ticks_ms, what, arg)] the firmware asked of its radio."""
        if not os.path.exists(self.log):
            return []
        out = []
        with open(self.log) as f:
            for line in f:
                parts = line.split(None, 2)
                out.append((int(parts[0]), parts[1], parts[2].strip() if len(parts) > 2 else ""))
        return out

    def env(self, dns_port):
        return {"ANTBRIDGE_WIFI": self.path, "ANTBRIDGE_WIFI_LOG": self.log, "ANTBRIDGE_DNS_PORT": str(dns_port)}


class NtpServer:
    """Answers SNTP requests with NTP_TIME (a stratum-2 server), echoing the
    client's transmit timestamp as the origin (RFC 4330)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(512)
            except OSError:
                continue
            if len(data) < 48 or data[0] & 7 != 3:
                continue
            self.requests += 1
            secs = NTP_TIME + NTP_UNIX_OFFSET
            reply = bytes([4 << 3 | 4, 2, 6, 0xEC]) + bytes(8) + b"GPS\x00" + struct.pack("!II", secs, 0) \
                + data[40:48] + struct.pack("!II", secs, 0) + struct.pack("!II", secs, 0)
            self.sock.sendto(reply, addr)

    def stop(self):
        self._stop = True
        self._thread.join()
        self.sock.close()


def resolve(port, name, rdtype="A"):
    """What a phone's resolver gets for name from the bridge's DNS."""
    r = dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=2)
    return [rr.to_text() for rrset in r.answer for rr in rrset if rrset.rdtype == dns.rdatatype.from_text(rdtype)]


def raw(fw, method, path, body=None, headers=None):
    """(status, headers, body text), redirects not followed."""
    c = http.client.HTTPConnection("127.0.0.1", fw.port, timeout=15)
    try:
        c.request(method, path, body, headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace")  # (the dashboard is gzip)
    finally:
        c.close()


def post_form(fw, fields):
    return raw(fw, "POST", "/setup", urllib.parse.urlencode(fields),
               {"Content-Type": "application/x-www-form-urlencoded"})


def wifi(fw):
    return fw.get_json("/api/wifi")


def settings_file(fw):
    with open(os.path.join(fw.data, "settings.json")) as f:
        return json.load(f)


class Rhythm:
    """The link's polls over elapsed time, from the firmware's own count."""

    def __init__(self, fw):
        self.fw = fw
        self.polls0 = self.polls()
        self.t0 = time.monotonic()

    def polls(self):
        return self.fw.get_json("/api/status")["link"]["stats"]["polls"]

    def check(self):
        elapsed = time.monotonic() - self.t0
        polls = self.polls() - self.polls0
        expected = elapsed * 1000 / LINK["poll_ms"]
        assert abs(polls - expected) <= 0.1 * expected, (polls, expected)


@pytest.fixture
def ntp():
    server = NtpServer()
    yield server
    server.stop()


def test_ntp_time_used_here_is_the_date_it_names():
    import calendar

    assert calendar.timegm((2025, 6, 1, 21, 0, 30, 0, 0, 0)) == NTP_TIME


def test_first_boot_set_up_from_a_phone(tmp_path, ntp):
    # No network configured: the bridge opens "antbridge-AB12" (WPA2) with
    # its captive portal. A phone's checks land on the set-up page; the
    # form saves the home network and the bridge joins it, keeps the set-up
    # network up a little for the phone to see the result, then closes it.
    # Online, NTP sets the clock, and a quiet-hours rule switches at local
    # time (tz +60 min).
    air = Air(tmp_path, [HOME, NEIGHBOUR])
    dns_port = udp_port()
    generator = {"name": "generator", "when": {"soc": {"below": 50, "quiet": {"below": 10}}},
                 "quiet_hours": {"from": "22:00", "to": "23:00"}}
    settings = {"wifi": {"ap_password": AP_PASSWORD, "ntp_server": "127.0.0.1:%d" % ntp.port},
                "time": {"tz_offset_min": 60},
                "outputs": {"outputs": [generator, {"name": "do2", "mode": "off"}, {"name": "do3", "mode": "off"}]}}
    env = dict(air.env(dns_port), ANTBRIDGE_CLOCK="unset")
    with fwproc.bridge(tmp_path, ["--soc", "30"], link=LINK, settings=settings, env=env) as (sim, fw):
        fw.wait_link("ok")
        rhythm = Rhythm(fw)
        w = wait_until(lambda: (lambda d: d if d["ap"]["up"] and d["networks"] else None)(wifi(fw)), 10,
                       POLL_S, "set-up mode with a scan")
        assert w["mode"] == "set-up" and w["state"] == "set-up mode" and w["setup_cause"] == "no network configured"
        assert w["ap"]["ssid"] == "antbridge-AB12" and w["ap"]["security"] == "wpa2" and w["ap"]["ip"] == "127.0.0.1"
        assert [(n["ssid"], n["rssi_dbm"]) for n in w["networks"]] == [("home", -61), ("neighbour <5G>", -83)]
        assert "password" not in json.dumps(w) and AP_PASSWORD not in json.dumps(w)
        assert fw.get_json("/api/health")["wifi"]["mode"] == "set-up"
        assert ("ap_start", "antbridge-AB12") in [(a, b) for _, a, b in air.actions()]

        # Before NTP the clock is unset: quiet hours are unknown, the normal threshold holds.
        wait_until(lambda: fw.get_json("/api/outputs")["outputs"][0]["state"] == "on", 10, POLL_S, "the generator on")

        # A phone on the set-up network resolves whatever it asks to the bridge.
        for name in ("connectivitycheck.gstatic.com", "captive.apple.com", "www.msftconnecttest.com",
                     "detectportal.firefox.com", "example.org"):
            assert resolve(dns_port, name) == ["127.0.0.1"], name
        assert resolve(dns_port, "captive.apple.com", "AAAA") == []
        dropped = wifi(fw)["ap"]["dns"]["dropped"]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.5)
            for junk in (b"\x00", b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fabc", b"\xff" * 300):
                s.sendto(junk, ("127.0.0.1", dns_port))
                with pytest.raises(socket.timeout):
                    s.recvfrom(512)
        d = wifi(fw)["ap"]["dns"]
        assert d["dropped"] == dropped + 3 and d["answered"] >= 6
        assert resolve(dns_port, "still.answering.example") == ["127.0.0.1"]

        # Its connectivity checks are sent to the set-up page.
        setup_url = "http://127.0.0.1:%d/setup" % fw.port
        for host, path in (("connectivitycheck.gstatic.com", "/generate_204"), ("captive.apple.com", "/hotspot-detect.html"),
                           ("www.msftncsi.com", "/ncsi.txt"), ("www.msftconnecttest.com", "/connecttest.txt"),
                           ("www.msftconnecttest.com", "/redirect"), ("detectportal.firefox.com", "/canonical.html")):
            status, headers, _ = raw(fw, "GET", path, headers={"Host": host})
            assert status == 302 and headers["Location"] == setup_url, (path, status, headers)

        # So is a page of any other site a phone or its user asks for; the bridge's own pages stay.
        status, headers, _ = raw(fw, "GET", "/", headers={"Host": "example.org"})
        assert status == 302 and headers["Location"] == setup_url
        status, _, _ = raw(fw, "GET", "/api/status", headers={"Host": "localhost:%d" % fw.port})
        assert status == 200  # a browser on the PC that runs it
        status, headers, _ = raw(fw, "GET", "/lite")
        assert status == 200 and headers["Content-Type"].startswith("text/html")  # the plain status page
        status, headers, _ = raw(fw, "GET", "/", headers={"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Encoding"] == "gzip"  # the dashboard
        status, headers, page = raw(fw, "GET", "/setup")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert "name='viewport'" in page and "<script" not in page
        assert 'value="home"' in page and "-61 dBm" in page
        assert "neighbour &lt;5G&gt;" in page and "<5G>" not in page  # a network's name is data, never markup
        air.set([HOME, NEIGHBOUR, {"ssid": "cafe", "rssi": -70}])  # an open network comes in range
        status, headers, _ = post_form(fw, {"scan": "1"})
        assert status == 303 and headers["Location"] == "/setup"
        wait_until(lambda: "cafe" in [n["ssid"] for n in wifi(fw)["networks"]], 15, POLL_S, "a rescan (10 s apart)")
        assert [a for _, a, _ in air.actions()].count("scan") == 2
        _, _, page = raw(fw, "GET", "/setup")
        assert 'value="cafe"' in page and "(open)" in page

        # A wrong token saves nothing.
        before = settings_file(fw)
        status, _, page = post_form(fw, {"ssid": "home", "password": HOME["password"], "hostname": "garage-bms",
                                         "token": "not-the-token-000000"})
        assert status == 401 and "Wrong API token" in page
        assert settings_file(fw) == before and wifi(fw)["state"] == "set-up mode"
        status, _, page = post_form(fw, {"ssid": "home", "password": "short", "token": TOKEN})
        assert status == 400 and "wifi.password" in page and settings_file(fw) == before

        # The phone saves the home network: settings.json has it, the bridge joins.
        status, headers, _ = post_form(fw, {"ssid": "home", "password": HOME["password"], "hostname": "garage-bms",
                                            "token": TOKEN})
        assert status == 303 and headers["Location"] == "/setup"
        saved = settings_file(fw)
        assert saved["wifi"] == {"ap_password": AP_PASSWORD, "ntp_server": "127.0.0.1:%d" % ntp.port, "ssid": "home",
                                 "password": HOME["password"], "hostname": "garage-bms"}
        assert saved["api_token"] == TOKEN and saved["outputs"] == settings["outputs"]
        w = wait_until(lambda: (lambda d: d if d["state"] == "up" else None)(wifi(fw)), 10, POLL_S, "joined")
        assert w["ip"] == "192.168.50.20" and w["ssid"] == "home" and w["rssi_dbm"] == -61
        assert w["hostname"] == "garage-bms" and w["mode"] == "station"
        assert w["ap"]["up"] and 0 < w["ap"]["closes_in_ms"] <= 30000  # still up, for the phone
        metrics = raw(fw, "GET", "/metrics")[2]
        assert "antbridge_wifi_connected 1\n" in metrics and "antbridge_wifi_rssi_dbm -61\n" in metrics
        status, _, page = raw(fw, "GET", "/setup")
        assert "Connected to <b>home</b> as 192.168.50.20" in page and "garage-bms.local" in page
        assert resolve(dns_port, "captive.apple.com") == ["127.0.0.1"]

        # Online: the clock from NTP, and the quiet-hours rule at local time.
        wait_until(lambda: wifi(fw)["ntp"]["synced"], 10, POLL_S, "NTP")
        assert ntp.requests >= 1
        doc = wait_until(lambda: (lambda o: o if o["state"] == "off" else None)(fw.get_json("/api/outputs")["outputs"][0]),
                         10, POLL_S, "the generator off in quiet hours")
        events = fw.get_json("/api/events")["events"]
        off = [e for e in events if e["kind"] == "output" and e["a"] == 0 and e["b"] == 0]
        assert off and off[0]["time"].startswith("2025-06-01T21:00:"), off  # stamped in UTC by the NTP clock
        texts = [e["text"] for e in events]
        assert "Wi-Fi up" in texts and "Wi-Fi joining" in texts

        # The set-up network closes, and its DNS with it.
        wait_until(lambda: not wifi(fw)["ap"]["up"], 40, 0.5, "the set-up network closed")
        assert [a for _, a, _ in air.actions()].count("ap_stop") == 1
        with pytest.raises((dns.exception.Timeout, ConnectionRefusedError)):
            resolve(dns_port, "captive.apple.com")
        status, _, _ = raw(fw, "GET", "/generate_204")
        assert status == 404  # not captive any more
        rhythm.check()
        assert fw.get_json("/api/health")["wifi"] == {"state": "up", "mode": "station", "reason": None, "ssid": "home",
                                                      "ip": "192.168.50.20", "rssi_dbm": -61}


def test_a_wrong_password_falls_back_to_set_up_mode(tmp_path):
    # setup_after_min 0.1: six seconds of failures, then the set-up network.
    air = Air(tmp_path, [HOME])
    settings = {"wifi": {"ssid": "home", "password": "wrong-pass-1", "setup_after_min": 0.1, "ntp_server": ""}}
    with fwproc.bridge(tmp_path, (), link=LINK, settings=settings, env=air.env(udp_port())) as (sim, fw):
        fw.wait_link("ok")
        rhythm = Rhythm(fw)
        w = wait_until(lambda: (lambda d: d if d["state"] == "down" else None)(wifi(fw)), 10, POLL_S, "down")
        assert w["reason"] == "wrong password" and w["code"] == 202 and w["mode"] == "station" and not w["ap"]["up"]
        w = wait_until(lambda: (lambda d: d if d["state"] == "set-up mode" else None)(wifi(fw)), 15, POLL_S, "set-up")
        assert w["setup_cause"] == "the network failed too long" and w["reason"] == "wrong password"
        acts = air.actions()
        first = [t for t, a, _ in acts if a == "connect"][0]
        ap = [t for t, a, _ in acts if a == "ap_start"][0]
        assert 6000 <= ap - first <= 8000, (first, ap)  # six seconds after the first failure began
        texts = [e["text"] for e in fw.get_json("/api/events")["events"]]
        assert "Wi-Fi down: wrong password (status 202)" in texts
        assert "Wi-Fi set-up mode (the network failed too long, last: wrong password)" in texts
        rhythm.check()


def test_boot_button_held_at_start_means_set_up_mode(tmp_path):
    # A good network is configured, but BOOT is held: set-up mode, and the
    # old network is not even tried.
    air = Air(tmp_path, [HOME])
    settings = {"wifi": {"ssid": "home", "password": HOME["password"], "ntp_server": ""}}
    env = dict(air.env(udp_port()), ANTBRIDGE_HELD="boot_button")
    with fwproc.bridge(tmp_path, (), link=LINK, settings=settings, env=env) as (sim, fw):
        w = wait_until(lambda: (lambda d: d if d["ap"]["up"] else None)(wifi(fw)), 10, POLL_S, "set-up mode")
        assert w["state"] == "set-up mode" and w["setup_cause"] == "BOOT button held"
        assert "connect" not in [a for _, a, _ in air.actions()]
        assert "BOOT button held" in fw.output()[0]


def test_a_lost_network_is_rejoined_with_backoff(tmp_path):
    air = Air(tmp_path, [HOME])
    settings = {"wifi": {"ssid": "home", "password": HOME["password"], "setup_after_min": 10, "ntp_server": ""}}
    with fwproc.bridge(tmp_path, (), link=LINK, settings=settings, env=air.env(udp_port())) as (sim, fw):
        fw.wait_link("ok")
        wait_until(lambda: wifi(fw)["state"] == "up", 10, POLL_S, "up")
        rhythm = Rhythm(fw)
        air.set([])  # the router goes off
        w = wait_until(lambda: (lambda d: d if d["state"] in ("down", "connecting") else None)(wifi(fw)), 5, 0.1, "down")
        assert fw.get_json("/api/health")["wifi"]["ip"] is None
        time.sleep(19)  # connects at about 1, 3.3, 7.6, 15.9 s (pauses 1, 2, 4, 8 s, each join 0.3 s)
        air.set([HOME])  # back
        wait_until(lambda: wifi(fw)["state"] == "up", 25, POLL_S, "up again")
        connects = [t for t, a, _ in air.actions() if a == "connect"][1:]
        gaps = [b - a for a, b in zip(connects, connects[1:])]
        # Each pause twice the one before (plus the 0.3 s join and the
        # task's 250 ms period), until the network was back.
        assert len(gaps) >= 3, gaps
        for k in range(3):
            pause = 1000 * 2 ** (k + 1)
            assert pause + 300 <= gaps[k] <= pause + 300 + 1000, gaps
        w = wifi(fw)
        assert w["ip"] == "192.168.50.20" and w["failures"] >= 4 and not w["ap"]["up"]
        texts = [e["text"] for e in fw.get_json("/api/events")["events"]]
        assert "Wi-Fi down: connection lost (status 200)" in texts
        rhythm.check()


def test_a_bridge_without_a_token_takes_one_from_the_set_up_page(tmp_path):
    # Control is off without an API token; on the bridge's own set-up
    # network the form chooses one (at least 16 characters), and the API
    # takes it at once.
    air = Air(tmp_path, [HOME])
    raw_settings = json.dumps({"link": LINK, "wifi": {"ap_password": AP_PASSWORD, "ntp_server": ""}})
    with fwproc.bridge(tmp_path, (), raw_settings=raw_settings, env=air.env(udp_port())) as (sim, fw):
        wait_until(lambda: wifi(fw)["ap"]["up"], 10, POLL_S, "set-up mode")
        assert fw.post_json("/api/outputs", {"output": 1, "action": "on"}, token="chosen-token-0123456789")[0] == 403
        _, _, page = raw(fw, "GET", "/setup")
        assert "Choose an API token" in page
        status, _, page = post_form(fw, {"ssid": "home", "password": HOME["password"], "token": "too-short"})
        assert status == 400 and "at least 16 characters" in page and "api_token" not in settings_file(fw)
        status, _, _ = post_form(fw, {"ssid": "home", "password": HOME["password"], "token": "chosen-token-0123456789"})
        assert status == 303 and settings_file(fw)["api_token"] == "chosen-token-0123456789"
        status, doc = fw.post_json("/api/outputs", {"output": 1, "action": "on"}, token="chosen-token-0123456789")
        assert status == 200 and doc["ok"], doc
        wait_until(lambda: wifi(fw)["state"] == "up", 10, POLL_S, "joined")
        # Now the token is set: the form needs it like every other change.
        status, _, page = post_form(fw, {"ssid": "home", "password": HOME["password"], "token": "another-token-0123456"})
        assert status == 401
