# Wiring: settings, the board, the status model, the event log and the link
# engine, then one supervised asyncio task per concern:
#   link    bmslink.BmsLink: the UART and the LinkEngine
#   http    the web face (status page, JSON API, commands)
#   heap    regular collections, the heap figures in /api/health
import asyncio

from eventlog import EV_BOOT, EV_CONFIG, EventLog
from link.engine import LinkEngine
from link.model import Model

import bmslink
import http
import hw
import settings as settings_mod
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
        self.outputs = {}


def load_settings():
    s = settings_mod.load(hw.storage_root())
    if s.error:
        print("settings: ERROR", s.error)
    elif not s.found:
        print("settings: no", settings_mod.FILE, "- using defaults")
    return s


def _output(ctx, name):
    if hw.output_spec(name) is None:
        return None  # not fitted on this board
    out = hw.Output(name)
    ctx.outputs[name] = out
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
    uart = hw.Uart(ctx.board, ctx.engine.baud)
    link = bmslink.BmsLink(ctx.engine, uart, ctx.changed)
    sup.start("link", link.run)
    web = http.create(ctx)
    sup.start("http", lambda: http.serve(ctx, web))
    sup.start("heap", sup.watch_heap)
    free, _ = sup.heap()
    print("antbridge: serving on port", hw.http_port(ctx.settings.http_port), "heap free", free)
    while True:
        await asyncio.sleep_ms(60000)


def main():
    s = load_settings()
    if s.wifi_ssid:
        hw.wifi_start(s.wifi_ssid, s.wifi_password)
    try:
        ctx = Context(s)
    except (OSError, ValueError) as e:  # a missing or invalid board file (schema.ConfigError)
        print("antbridge: ERROR board", hw.board_name(), ":", e)
        raise
    try:
        asyncio.run(_start(ctx))
    except KeyboardInterrupt:  # Ctrl-C at the REPL, or the host runtime stopped
        print("antbridge: stopped")
