# Wiring: build() makes every part once and connects them; start() runs one
# supervised asyncio task per concern:
#   link     bmslink.BmsLink: the UART and the LinkEngine
#   outputs  outputs.OutputsTask: energy counters, then DO1-DO3 (relays.Relays)
#   acc      accwake.AccWake: ACC wake / keep-awake, the isolated supply
#   persist  persist.Persist: state.json, coalesced and bounded
#   http     httpserver.HttpServer + web.py: the page, the API, /metrics, SSE
#   wifi     wifi.WifiTask: station, set-up access point + portal, NTP (also
#            in safe mode: it is how the web face is reached)
# Faces read the hub (lib/hub.py) and act through the control service
# (lib/control.py); no face reaches into a task. In safe mode only the web
# face runs and the outputs sit at their fail-safe state.
#
#   app = build(settings, hw, boot_record)     # in-process tests pass a fake hw
#   asyncio.run(start(app))
import asyncio
import gc
import sys

import catalog as C
from acc import STATE_NAMES as ACC_STATES
from alarmwatch import AlarmWatch
from ant.codes import CHEMISTRY
from control import COMMAND_NAMES, Control
from energy import Energy
from eventlog import EV_BOOT, EV_CONFIG, EventLog
from eventtext import CONFIG_SETTINGS, CONFIG_STATE
from history import History
from hub import Hub
from link.engine import LinkEngine
from link.model import LINK_NAMES, Model
from rules.engine import Engine

import web
import webparams
import webportal
from accwake import AccWake
from bmslink import BmsLink
from httpserver import HttpServer
from outputs import OutputsTask
from persist import Persist
from relays import Relays
from statestore import StateStore
from supervisor import Supervisor
from wifi import WifiTask

# The dashboard's chart: the last hour, one sample every 30 s (lib/history.py;
# 120 samples of 13 bytes).
_HISTORY_SAMPLES = 120
_HISTORY_PERIOD_MS = 30000

# Heartbeat budgets: a task silent this long is hung.
_BUDGET_MS = 5000
_HTTP_BUDGET_MS = 10000


class App:
    """Every part, made once and wired (build()); tests and main() read
    them, tasks get only what they need."""

    def __init__(self, settings, hw, boot=None):
        self.settings = settings
        self.hw = hw
        self.boot = boot
        self.safe_mode = boot is not None and boot.safe_mode
        now = hw.ticks_ms()
        safe = self.safe_mode
        # The web server's response buffers first, while the heap is still in
        # one piece (made last, they met a heap fragmented by the build's
        # transients: 25 KB free in holes of at most 1.4 KB); its app is set
        # once the web face is made.
        self.http = HttpServer(None, hw.http_host(), hw.http_port(settings.http_port), hw)
        # Next: made once and kept, its arrays are best at the heap's
        # bottom, under what the rest of the start-up leaves behind.
        history = History(_HISTORY_SAMPLES, _HISTORY_PERIOD_MS)
        self.history = history
        log = EventLog(64, hw.clock_s)
        self.log = log
        model = Model()
        link = LinkEngine(model, settings.link, log)
        self.link = link
        hub = Hub(model, link, log, hw)
        self.hub = hub
        log.on_add(lambda: hub.publish(C.P_EVENTS))
        hub.texts = {C.R_LINK_STATE: LINK_NAMES, C.R_ACC_STATE: ACC_STATES,
                     C.find(C.P_STATUS, "chemistry"): CHEMISTRY}
        sup = Supervisor(hw, log, hub, boot, settings.clean_run_s * 1000)
        self.supervisor = sup
        if boot is not None and safe:
            sup.enter_safe_mode(str(boot.crashed) + " crashed boots in a row: the outputs are at their fail-safe "
                                "state and the link is off. Fix the cause (see the event log), then reboot.")
        store = StateStore(hw.storage_root())
        self.store = store
        persist = Persist(store, log, hw)
        self.persist = persist

        # Outputs: the rules engine (compiled by settings.boot_load) and the pins.
        rules = Engine(settings.program, log)
        settings.program = None  # the engine holds it now
        tz_s = settings.tz_offset_min * 60
        relays = Relays(hw, rules, log, settings.sense_check_s, link.lost_ms, tz_s)
        self.relays = relays
        energy = Energy(settings.energy)
        self.energy = energy
        alarms = AlarmWatch(log, hw)
        flags = bytearray(settings.flag_count)
        self.flags = flags
        accwake = None

        board = hw.board()
        supply = hw.Output("supply_enable") if "supply_enable" in board.outputs else None
        acc_pin = hw.Output("acc") if "acc" in board.outputs else None
        if not safe:
            if supply is not None:
                supply.set(1)  # the BMS's TTL side answers only when powered
                link.set_powered(True, now)
            accwake = AccWake(hw, settings, link, hub, log, rules, flags, acc_pin, supply)
        self.accwake = accwake
        hub.attach(relays, accwake.acc if accwake is not None else None, energy, sup, alarms)
        control = Control(settings.api_token, settings.allow_commands, link, relays, accwake, flags, log, hw,
                          settings.link.command_timeout_ms)
        self.control = control
        outputs = OutputsTask(hw, hub, relays, energy, persist, flags, history)
        self.outputs = outputs
        if not safe:
            control.on_refresh(outputs.step)

        # What survives a reboot: one state.json, parts saved together.
        def dump_energy(now_ms):
            energy.mark_saved(now_ms)
            return energy.to_dict()

        def load_energy(value, now_ms):
            energy.from_dict(value)
            return True

        def dump_outputs(now_ms):
            relays.dirty = False
            return rules.persistent_state()

        def load_outputs(value, now_ms):
            return rules.restore(value, now_ms)

        def load_events(value, now_ms):
            log.restore(value)
            return True

        persist.add("energy", dump_energy, load_energy)
        persist.add("outputs", dump_outputs, load_outputs)
        persist.add("events", lambda now_ms: log.to_list(32), load_events)
        rejected = settings.rejected
        keep = ("outputs",) if "outputs" in rejected or "all" in rejected else ()
        persist.restore(store.load(), now, keep)
        # Collections during the build: the garbage of each step (state.json
        # parsed, the faces' route tables made) is freed before the next
        # long-lived objects are made, so these fill its holes instead of
        # the free space after it: the heap stays in fewer, larger pieces
        # (at rest, 96K, set-up mode: largest free block 15 KB with these,
        # 1.4 KB without).
        gc.collect()

        cause = hw.reset_cause()
        self.reset_cause = cause
        log.add(EV_BOOT, cause, 1 if safe else 0, boot.crashed if boot is not None else 0, now)
        log.add(EV_CONFIG, 0 if settings.error else 1, CONFIG_SETTINGS, 0, now)
        if store.error:
            log.add(EV_CONFIG, 0, CONFIG_STATE, 0, now)

        if safe:
            relays.enter_safe_mode(now)
            self.bmslink = None
        else:
            self.bmslink = BmsLink(hw, link, hw.Uart(board, link.baud), hub, alarms, settings.link_poll_rx)

        def health():
            return health_doc(self)

        client_seen = accwake.client_seen if accwake is not None else None
        self.wifi = None
        extra = (webparams.create(hub, control, hw, self.bmslink),)
        if hasattr(hw, "Wifi"):  # (in-process tests run without a radio)
            self.wifi = WifiTask(hw, settings, hub, log)
            extra += (webportal.create(self.wifi, control, hw, hw.storage_root()),)
            gc.collect()
        webapp = web.create(hub, control, hw, health, client_seen, relays.names, COMMAND_NAMES, extra, history)
        self.web = webapp
        gc.collect()
        self.http.app = webapp  # pyright: ignore[reportAttributeAccessIssue]  (made with None above)


def build(settings, hw, boot=None):
    return App(settings, hw, boot)


def health_doc(a):
    """GET /api/health."""
    sup = a.supervisor
    free, allocated = sup.heap()
    http = a.http
    boot = a.boot
    return {
        "uptime_s": sup.uptime_s(),
        "heap_free": free,
        "heap_allocated": allocated,
        "heap_min_free": sup.heap_min_free,
        "task_crashes": sup.crashes,
        "task_hangs": sup.hangs,
        "task_restarts": sup.restarts,
        "last_crash": sup.last_crash,
        "watchdog_feeds": sup.watchdog.feeds if sup.watchdog is not None else None,
        "safe_mode": sup.safe_mode,
        "safe_mode_reason": sup.safe_reason,
        "boots": boot.boots if boot is not None else None,
        "crashed_boots": boot.crashed if boot is not None else None,
        "reset_cause": a.reset_cause,
        "settings_error": a.settings.error,
        "state_error": a.store.error,
        "state_saves": a.store.saves,
        "state_save_errors": a.store.save_errors,
        "http": {"accepted": http.accepted, "active": http.active, "streams": http.streams,
                 "busy_503": http.busy, "timeouts": http.timeouts, "failed": http.failed},
        "subscribers": a.hub.subscribers(),
        "wifi": a.wifi.health() if a.wifi is not None else None,
    }


async def start(a):
    sup = a.supervisor
    if a.bmslink is not None:
        sup.start("link", a.bmslink, _BUDGET_MS)
        sup.start("outputs", a.outputs, _BUDGET_MS)
        sup.start("acc", a.accwake, _BUDGET_MS)
        sup.start("persist", a.persist, _BUDGET_MS)
    sup.start("http", a.http, _HTTP_BUDGET_MS)
    if a.wifi is not None:
        sup.start("wifi", a.wifi, _BUDGET_MS)
    if a.settings.watchdog:
        sup.start_watchdog()
    free, _ = sup.heap()
    print("antbridge: serving on port", a.http.port, "heap free", free, "(SAFE MODE)" if a.safe_mode else "")
    await sup.run()


def stop(a):
    """A clean stop (Ctrl-C at the REPL, the host runtime stopped)."""
    a.supervisor.stop()
    if not a.safe_mode:
        a.persist.flush(a.hw.ticks_ms())
    if a.boot is not None:
        a.boot.clean()


def main(settings, hw, boot):
    """Run the firmware (main.py); a failure to start resets the board, and
    counts as a crashed boot (safemode.py)."""
    a = None
    try:
        a = build(settings, hw, boot)
        asyncio.run(start(a))
    except KeyboardInterrupt:
        if a is not None:
            stop(a)
        elif boot is not None:
            boot.clean()
        print("antbridge: stopped")
    except Exception as e:  # the firmware could not start or its loop died
        print("antbridge: FATAL:", type(e).__name__, e)
        sys.print_exception(e)  # pyright: ignore
        hw.reset(7)
