# The Wi-Fi task: the radio (hw.Wifi), driven by lib/wifistate.py's state
# machine every _PERIOD_MS (at once when the portal saves a network):
# station mode with reconnects and backoff, set-up mode with the access point
# "antbridge-XXXX" (XXXX: the end of the MAC) and the captive DNS responder
# (dnsd.py, imported only then), the clock from NTP once online
# (ntpsync.py), and the signal strength for the hub (part P_WIFI, rows
# wifi rssi_dbm / connected). Nothing here is awaited by the link or the
# relays: they run in their own tasks, and every radio call returns at once
# (except a scan, see hw.Wifi). A pass while nothing changes makes no
# garbage of its own: the state machine's step is proved allocation-free
# (host_tests/mp_test_wifi_alloc.py), WLAN.status() returns a small int on
# the ESP32 (the host's fake radio does allocate).
#
# The BOOT button (boards/*.json input "boot_button") held for _HOLD_MS at
# the start, or pressed that long within _BUTTON_WINDOW_MS of it, switches to
# set-up mode. (GPIO0 held during reset starts the ROM's download mode: press
# it just after power-up or the EN button.)
import asyncio
import sys

import catalog as C
from eventtext import WIFI_NAMES, WIFI_REASONS
from ticks import ticks_diff
from wakeup import Wakeup
from wifistate import (
    A_AP_OFF,
    A_AP_ON,
    A_CONNECT,
    A_DISCONNECT,
    A_SCAN,
    OFF,
    R_BUTTON,
    UP,
    WifiState,
)

try:
    from micropython import const
except ImportError:  # CPython (pyright)
    def const(__value):
        return __value

_PERIOD_MS = const(250)
_RSSI_MS = const(10000)  # signal strength read this often while up
_HOLD_MS = const(1000)
_BUTTON_WINDOW_MS = const(5000)
_SCAN_MIN_MS = const(10000)  # a rescan from the page at most this often
_MAX_NETWORKS = const(12)


class WifiTask:
    def __init__(self, hw, settings, hub, log):
        self.hw = hw
        self.hub = hub
        self.radio = hw.Wifi()
        self.ssid = settings.wifi_ssid
        self.password = settings.wifi_password
        mac = self.radio.mac()
        suffix = "%02X%02X" % (mac[4], mac[5])
        self.ap_name = "antbridge-" + suffix
        self.hostname = settings.wifi_hostname or "antbridge-" + suffix.lower()
        self.ap_password = settings.wifi_ap_password
        self.http_port = hw.http_port(settings.http_port)
        self.m = WifiState(settings.wifi_setup_after_ms, log)
        hub.wifi = self.m
        self.sched = None  # ntp.NtpSchedule from the first time the station is up
        self._ntp = None  # ntpsync.NtpExchange while one runs (the module is loaded only then)
        self.ntp_server = settings.ntp_server  # "" = no NTP
        self.ntp_address = None  # the server's address, as last looked up
        self.button = hw.Input("boot_button") if "boot_button" in hw.board().inputs else None
        self.beat = None  # callable(): the supervisor's heartbeat
        self.wakeup = Wakeup()
        self.ip = None  # the station's address while up
        self.ap_ip = None  # the access point's address while it is up
        self.dns = None  # dnsd.DnsResponder while the access point is up
        self._dns_task = None
        self.networks = []  # the last scan: [(ssid, rssi dBm, open)], strongest first
        self.scanned_ms = -1
        self._scan = False
        self.error = None  # the radio's last refusal
        self._started_ms = 0
        self._held_ms = -1  # the BOOT button: ticks it went down (-1: up)
        self._button_open = self.button is not None
        self._rssi_ms = 0
        self._published = -1

    # -- the loop ------------------------------------------------------------------------

    async def run(self):
        hw = self.hw
        m = self.m
        now = hw.ticks_ms()
        if m.state == OFF:
            self._started_ms = now
            self.radio.start(self.hostname)
            # The BOOT button down at the start: see whether it is held
            # before the station joins anything.
            button = self.button
            while button is not None and button.value() and ticks_diff(now, self._started_ms) < _HOLD_MS:
                if self.beat is not None:
                    self.beat()
                await asyncio.sleep_ms(50)
                now = hw.ticks_ms()
            held = button is not None and button.value() == 1
            if held:
                self._button_open = False
                print("wifi: BOOT button held: set-up mode")
            self._apply(m.start(now, bool(self.ssid), held), now)
        elif m.ap and self.dns is None:  # restarted by the supervisor in set-up mode
            self._apply(A_AP_ON, now)
        while True:
            self.step(hw.ticks_ms())
            if self.beat is not None:
                self.beat()
            await self.wakeup.within(_PERIOD_MS)

    def step(self, now):
        m = self.m
        if self._button_open:
            self._check_button(now)
        status = self.radio.status()
        associated = self.radio.associated() if m.overdue(now) else 0
        actions = m.step(now, status, associated)
        if actions:
            self._apply(actions, now)
        if m.state == UP:
            if self.ip is None:
                self.ip = self.radio.address()
                self._rssi_ms = now - _RSSI_MS
            if ticks_diff(now, self._rssi_ms) >= _RSSI_MS:
                self._rssi_ms = now
                rssi = self.radio.rssi()
                rssi = rssi if rssi is not None else 0
                if rssi != m.rssi:
                    m.rssi = rssi
                    self.hub.publish(C.P_WIFI)
            if self.ntp_server:
                self._ntp_step(now)
        elif self.ip is not None:
            self.ip = None
            m.rssi = 0
            self._ntp_stop()
        if self._scan and (self.scanned_ms < 0 or ticks_diff(now, self.scanned_ms) >= _SCAN_MIN_MS):
            self._scan = False
            self._do_scan(now)
        if m.changes != self._published:
            self._published = m.changes
            self.hub.publish(C.P_WIFI)

    def _check_button(self, now):
        if ticks_diff(now, self._started_ms) > _BUTTON_WINDOW_MS and self._held_ms < 0:
            self._button_open = False  # the window is over
            return
        if self.button.value():  # pyright: ignore  (not None while the window is open)
            if self._held_ms < 0:
                self._held_ms = now
            elif ticks_diff(now, self._held_ms) >= _HOLD_MS:
                self._button_open = False
                print("wifi: BOOT button held: set-up mode")
                self._apply(self.m.force_setup(now, R_BUTTON), now)
        else:
            self._held_ms = -1

    def _apply(self, actions, now):
        radio = self.radio
        try:
            if actions & A_DISCONNECT:
                radio.disconnect()
            if actions & A_CONNECT:
                radio.connect(self.ssid, self.password)
            if actions & A_AP_ON:
                self.ap_ip = radio.ap_start(self.ap_name, self.ap_password)
                self._dns_start()
            if actions & A_AP_OFF:
                self._dns_stop()
                radio.ap_stop()
                self.ap_ip = None
        except OSError as e:
            self.error = str(e)
            print("wifi: the radio refused:", e)
            more = self.m.radio_failed(now)
            if more & ~actions:
                self._apply(more & ~actions, now)
        if actions & A_SCAN:
            self._scan = True
            self.scanned_ms = -1  # at once

    # -- the clock -----------------------------------------------------------------------

    def _ntp_step(self, now):
        x = self._ntp
        if x is None:
            if self.sched is None:
                from ntp import NtpSchedule

                self.sched = NtpSchedule()
            if not self.sched.due(now):
                return
            import ntpsync

            host, _, port = self.ntp_server.partition(":")
            x = ntpsync.NtpExchange(self.hw, host, int(port) if port else 123, self.radio.dns_server(), now)
            self._ntp = x
        r = x.step(now)
        if r == 0:
            return
        self.ntp_address = x.address or self.ntp_address
        self._ntp = None
        if r == 1:
            self.sched.ok(now)  # pyright: ignore
        else:
            self.sched.failed(now, r)  # pyright: ignore
        _unload("ntpsync", "dnswire" if self.dns is None else None)

    def _ntp_stop(self):
        if self._ntp is not None:
            self._ntp.close()
            self._ntp = None
            self.sched.pending = True  # pyright: ignore  (asked again once the network is back)
            _unload("ntpsync", "dnswire" if self.dns is None else None)

    # -- set-up mode ---------------------------------------------------------------------

    def _dns_start(self):
        bind = self.radio.dns_address()
        if self.dns is not None or not bind[1] or self.ap_ip is None:
            return  # (the host runtime without ANTBRIDGE_DNS_PORT has none)
        import dnsd

        self.dns = dnsd.DnsResponder(bind, self.ap_ip)
        self._dns_task = asyncio.create_task(self.dns.run())

    def _dns_stop(self):
        if self._dns_task is not None:
            self._dns_task.cancel()
            self._dns_task = None
        if self.dns is not None:
            self.dns.close()
            self.dns = None
            _unload("dnsd", "dnswire" if self._ntp is None else None)

    def _do_scan(self, now):
        try:
            found = self.radio.scan()
        except OSError as e:
            self.error = "scan: " + str(e)
            return
        found.sort(key=lambda n: -n[1])
        networks = []
        for ssid, rssi, is_open in found:
            try:
                name = ssid.decode()
            except UnicodeError:
                continue
            if name and all(n[0] != name for n in networks):
                networks.append((name, rssi, is_open))
                if len(networks) >= _MAX_NETWORKS:
                    break
        self.networks = networks
        self.scanned_ms = now

    def rescan(self):
        """The set-up page asks for a fresh list (it comes at most every
        _SCAN_MIN_MS: each scan stalls the interpreter)."""
        self._scan = True
        self.wakeup.fire()

    def join(self, ssid, password, hostname, now):
        """New credentials (saved by the portal): try them now."""
        self.ssid = ssid
        self.password = password
        if hostname and hostname != self.hostname:
            self.hostname = hostname
            self.radio.start(hostname)  # takes effect with the next connect
        self._apply(self.m.join(now), now)
        self.wakeup.fire()

    def client_seen(self, now):
        self.m.client_seen(now)

    def is_own_host(self, host):
        """A Host header that names the bridge (its addresses, its name;
        "localhost": a browser on the PC that runs the host runtime)."""
        name = host.split(":")[0].lower()
        h = self.hostname.lower()
        return (name == self.ap_ip or name == self.ip or name == h or name == "localhost"
                or (name.endswith(".local") and name[:-6] == h))

    def setup_url(self):
        port = self.http_port
        return "http://" + (self.ap_ip or "192.168.4.1") + ("" if port == 80 else ":" + str(port)) + "/setup"

    # -- faces ---------------------------------------------------------------------------

    def health(self):
        """/api/health's "wifi"."""
        m = self.m
        return {"state": WIFI_NAMES[m.state], "mode": "set-up" if m.setup_mode() else "station",
                "reason": WIFI_REASONS[m.reason], "ssid": self.ssid or None, "ip": self.ip,
                "rssi_dbm": m.rssi if m.state == UP and m.rssi else None}

    def describe(self, now):
        """GET /api/wifi (never a password)."""
        m = self.m
        d = self.health()
        d["code"] = m.code
        d["setup_cause"] = WIFI_REASONS[m.setup_cause]
        d["hostname"] = self.hostname
        d["retry_in_ms"] = m.retry_in(now)
        d["backoff_ms"] = m.backoff_ms
        d["attempts"] = m.attempts
        d["failures"] = m.failures
        d["error"] = self.error
        d["ap"] = {"ssid": self.ap_name, "ip": self.ap_ip, "security": "wpa2" if self.ap_password else "open",
                   "up": bool(m.ap), "closes_in_ms": m.ap_left(now),
                   "dns": self.dns.describe() if self.dns is not None else None}
        d["networks"] = [{"ssid": n[0], "rssi_dbm": n[1], "open": bool(n[2])} for n in self.networks]
        d["scan_age_s"] = ticks_diff(now, self.scanned_ms) // 1000 if self.scanned_ms >= 0 else None
        d["ntp"] = self._ntp_describe(now) if self.ntp_server else None
        return d

    def _ntp_describe(self, now):
        s = self.sched
        if s is None:  # not online yet
            return {"server": self.ntp_server, "address": None, "synced": False, "age_s": None, "syncs": 0,
                    "failures": 0, "error": None}
        from ntp import ERRORS

        return {"server": self.ntp_server, "address": self.ntp_address, "synced": s.synced,
                "age_s": s.age_s(now) if s.synced else None, "syncs": s.syncs, "failures": s.failures,
                "error": ERRORS[-s.error] if s.error else None}

    def close(self):
        """Released by the supervisor before a restart."""
        self._dns_stop()
        self._ntp_stop()


def _unload(name, other=None):
    # A module needed now and then (an NTP exchange, set-up mode): its
    # functions go back to the heap until the next time.
    sys.modules.pop(name, None)
    if other is not None:
        sys.modules.pop(other, None)
