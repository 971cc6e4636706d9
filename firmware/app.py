# Wiring: settings, the board, the status model, the event log and the link
# engine, then one supervised asyncio task per concern:
#   link    bmslink.BmsLink: the UART and the LinkEngine
#   http    the web face (status page, JSON API, commands)
#   outputs outputs.Outputs: DO1-DO3 from the rules engine, energy counters
#   acc     accwake.AccWake: ACC wake / keep-awake, the isolated supply
#   heap    regular collections, the heap figures in /api/health
import asyncio

from energy import Energy
from eventlog import EV_BOOT, EV_CONFIG, EventLog
from link.engine import LinkEngine
from link.model import Model
from rules.engine import Engine

import accwake
import bmslink
import http
import hw
import outputs
from statestore import StateStore
from supervisor import Supervisor


class Context:
    """What the tasks share (one instance, built once at start)."""

    def __init__(self, settings):
        self.settings = settings
        self.board = hw.board()
        self.model = Model()
        self.log = EventLog()
        self.engine = LinkEngine(self.model, settings.link, self.log)
        self.changed = asyncio.Event()  # pulsed on every model update
        self.supervisor = Supervisor()
        self.pins = {}  # role -> hw.Output ("acc", "supply_enable"; DOs live in self.outputs)
        self.store = StateStore(hw.storage_root())
        self.client_ms = -1  # ticks of the last HTTP request (-1 = none yet)
        self.flags = bytearray(settings.flag_count)
        self.outputs = None  # outputs.Outputs, built in _start
        self.acc = None  # accwake.AccWake


def _rules_engine(settings, log):
    program = settings.program  # compiled by settings.boot_load()
    settings.program = None  # the engine holds it now
    return Engine(program, log)


def _output(ctx, name):
    if name not in hw.board().outputs:
        return None  # not fitted on this board
    out = hw.Output(name)
    ctx.pins[name] = out
    return out


async def _start(ctx):
    sup = ctx.supervisor
    now = hw.ticks_ms()
    ctx.log.add(EV_BOOT, 0, 0, 0, now)
    ctx.log.add(EV_CONFIG, 0 if ctx.settings.error else 1, 0, 0, now)
    supply = _output(ctx, "supply_enable")
    if supply is not None:
        supply.set(1)  # the BMS's TTL side answers only when powered
        ctx.engine.set_powered(True, now)
    _output(ctx, "acc")
    engine = _rules_engine(ctx.settings, ctx.log)
    ctx.outputs = outs = outputs.Outputs(ctx, engine, Energy(ctx.settings.energy), ctx.flags)
    outs.restore(ctx.store.load(), now)
    ctx.acc = wake = accwake.AccWake(ctx, engine, ctx.flags)
    uart = hw.Uart(ctx.board, ctx.engine.baud)
    link = bmslink.BmsLink(ctx.engine, uart, ctx.changed)
    sup.start("link", link.run)
    web = http.create(ctx)
    sup.start("http", lambda: http.serve(ctx, web))
    sup.start("outputs", outs.run)
    sup.start("acc", wake.run)
    sup.start("heap", sup.watch_heap)
    free, _ = sup.heap()
    print("antbridge: serving on port", hw.http_port(ctx.settings.http_port), "heap free", free)
    while True:
        await asyncio.sleep_ms(60000)


def main(s=None):
    """Run the firmware; `s` = settings already loaded (main.py loads them
    before importing this module, while the heap is still empty)."""
    if s is None:
        import settings as settings_mod

        s = settings_mod.boot_load(hw.storage_root())
    if s.wifi_ssid:
        try:
            hw.wifi_start(s.wifi_ssid, s.wifi_password)
        except OSError as e:  # the radio refused: local control runs without the network
            print("antbridge: ERROR wifi:", e)
    try:
        ctx = Context(s)
    except (OSError, ValueError) as e:  # a missing or invalid board file (schema.ConfigError)
        print("antbridge: ERROR board", hw.board_name(), ":", e)
        raise
    try:
        asyncio.run(_start(ctx))
    except KeyboardInterrupt:  # Ctrl-C at the REPL, or the host runtime stopped
        if ctx.outputs is not None:
            ctx.outputs.save(hw.ticks_ms())  # counters moved since the last periodic save
        print("antbridge: stopped")
