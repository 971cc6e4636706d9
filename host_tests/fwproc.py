# Test helper: the firmware under the MicroPython unix port, against a
# running BMS simulator, as real processes (the same start-up as `make run`,
# from tools/run.py). CPython only. The firmware runs frozen into the 32-bit
# esp32like interpreter, as on a WROOM, at run.DEFAULT_HEAP;
# ANTBRIDGE_DEPLOY=mpy runs it as .mpy files (at run.MPY_HEAP),
# ANTBRIDGE_E2E_HEAP=NK sets another heap, ANTBRIDGE_MP_BITS=64 uses the
# 64-bit build. Firmware.interpreter names what ran (in failure messages).
#
#   sim = SimProcess("--protocol", "old").start()          # host_tests/simproc.py
#   fw = Firmware(tmp_path, sim, link={"poll_ms": 200})   # build + start + wait for HTTP
#   fw.get_json("/api/status"); fw.post_json("/api/command", {...}, token=fw.token)
#   sim.control("fault silent 5"); sim.state()["charge_mos"]
#   fw.stop(); sim.stop()                                  # fw.stop() returns the exit code
#   with bridge(tmp_path, ["--protocol", "old"], link={...}) as (sim, fw): ...   # all of the above
#   alloc_probe(tmp_path)   # the periodic tasks under heap_lock(), see ALLOC_PROBE
import contextlib
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request

import run  # tools/run.py (tools/ is on sys.path via conftest)
from simproc import SimProcess

ROOT = run.ROOT
BUILD = os.environ.get("ANTBRIDGE_E2E_BUILD") or os.path.join(ROOT, "build", "e2e")
TOKEN = "e2e-token-0123456789"
DEPLOY = run.deploy_mode()
HEAP = os.environ.get("ANTBRIDGE_E2E_HEAP") or run.default_heap(DEPLOY)
_build_lock = threading.Lock()
_runtime = None


def runtime():
    """The interpreter and MICROPYPATH (run.Runtime), built once per session."""
    global _runtime
    with _build_lock:
        if _runtime is None:
            _runtime = run.build(BUILD, DEPLOY)
        return _runtime


def interpreter():
    """What the firmware runs on, for messages: "MicroPython esp32like
    32-bit v1.28.0, firmware frozen, heap 96K"."""
    return "MicroPython %s, heap %s" % (runtime().label(), HEAP)


def firmware_module(name):
    """Import a firmware/ module under CPython, for tests of its pure parts.
    firmware/ goes after lib/ and tools/ on the path: firmware/http.py must
    not shadow CPython's http."""
    import importlib
    import sys

    firmware = os.path.join(ROOT, "firmware")
    if firmware not in sys.path:
        sys.path.append(firmware)
    return importlib.import_module(name)


@contextlib.contextmanager
def bridge(tmp_path, sim_args=(), **fw_kw):
    """A simulator started with sim_args and the firmware against it
    (Firmware keywords); checks no_crash() at the end and stops both."""
    sim = SimProcess(*sim_args).start()
    fw = None
    try:
        fw = Firmware(tmp_path, sim, **fw_kw)
        yield sim, fw
        no_crash(fw)
    finally:
        if fw is not None:
            fw.stop()
        sim.stop()


def no_crash(fw):
    """The firmware is healthy: no task crashed, no traceback printed.
    Returns /api/health."""
    out, err = fw.output()
    health = fw.get_json("/api/health")
    assert health["task_crashes"] == 0, (health, err)
    assert "Traceback" not in out + err, out + err
    return health


def wait_until(predicate, timeout_s, interval_s=0.05, what="condition"):
    """Poll predicate() until it returns a truthy value; returns it."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError("timed out after %.1f s waiting for %s (last: %r)" % (timeout_s, what, last))


class Firmware:
    def __init__(self, workdir, sim, link=None, heap=HEAP, settings=None, raw_settings=None, env=None):
        """Start the firmware with a fresh data dir. `link` overrides
        settings.link; `settings` other keys; `raw_settings` is written as
        settings.json verbatim (to test corrupt files)."""
        self.workdir = os.path.join(str(workdir), "fw")
        self.data = os.path.join(self.workdir, "data")
        os.makedirs(self.data, exist_ok=True)
        path = os.path.join(self.data, "settings.json")
        if raw_settings is not None:
            with open(path, "w") as f:
                f.write(raw_settings)
            self.token = None
        else:
            d = {"api_token": TOKEN, "link": dict(link or {})}
            d.update(settings or {})
            with open(path, "w") as f:
                json.dump(d, f)
            self.token = d.get("api_token")
        self.port = run.free_port()
        self.stdout_path = os.path.join(self.workdir, "stdout.log")
        self.stderr_path = os.path.join(self.workdir, "stderr.log")
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.interpreter = "MicroPython %s, heap %s" % (runtime().label(), heap)
        self.proc = run.start_firmware(runtime(), self.data, sim.ready, self.port, heap, stdout=self._out,
                                       stderr=self._err, env=env)
        try:
            run.wait_http(self.port, self.proc, timeout_s=30)
        except run.RunError as e:
            out, err = self.output()
            self.stop()
            raise AssertionError("%s (%s)\n%s%s" % (e, self.interpreter, out[-2000:], err[-4000:]))

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def request(self, method, path, body=None, headers=None, timeout_s=30):
        """(HTTP status, decoded JSON or text)."""
        req = urllib.request.Request(self.url(path), data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as r:
                status, raw, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            status, raw, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
        text = raw.decode()
        return status, json.loads(text) if ctype.startswith("application/json") else text

    def get_json(self, path):
        status, doc = self.request("GET", path)
        assert status == 200, (path, status, doc)
        return doc

    def post_json(self, path, obj, token=None, timeout_s=30):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        return self.request("POST", path, json.dumps(obj).encode(), headers, timeout_s)

    def status(self):
        return self.get_json("/api/status")

    def wait_link(self, state, timeout_s=15, **link_fields):
        def check():
            doc = self.status()
            link = doc["link"]
            if link["state"] == state and all(link[k] == v for k, v in link_fields.items()):
                return doc
            return None

        return wait_until(check, timeout_s, 0.1, "link %s %r" % (state, link_fields))

    def output(self):
        self._out.flush()
        self._err.flush()
        with open(self.stdout_path) as f:
            out = f.read()
        with open(self.stderr_path) as f:
            return out, f.read()

    def stop(self):
        run.stop(self.proc)
        self._out.close()
        self._err.close()
        return self.proc.returncode


# Run by alloc_probe() under the MicroPython unix port from the compiled
# firmware: the link, outputs and acc tasks under the real asyncio scheduler
# against a canned BMS on a fake clock, with the heap locked for 60 s of
# (fake) time after a 20 s warm-up. A task that allocates dies of
# MemoryError, so it is no longer alive at the end. Prints one JSON line.
ALLOC_PROBE = '''\
# The firmware's periodic tasks (link, outputs, acc) run under the real
# asyncio scheduler against a canned BMS, with the heap locked after a
# warm-up: any allocation in a pass raises MemoryError and ends the run.
import asyncio
import json

import micropython

import hw
import settings
from ant import new
from ant.status import Status
from energy import Energy
from eventlog import EventLog
from link.engine import LinkEngine
from link.model import LINK_OK, Model
from rules.engine import Engine

import accwake
import bmslink
import outputs
from statestore import StateStore

_WARM_MS = 20000
_LOCKED_MS = 60000


class Ctx:
    pass


class CannedBms:
    """A UART whose BMS answers every request with one status frame."""

    def __init__(self, reply):
        self.reply = reply
        self.pending = False

    def set_baud(self, baud):
        pass

    def write(self, buf):
        self.pending = True

    def readinto(self, buf):
        if not self.pending:
            return 0
        self.pending = False
        n = len(self.reply)
        for i in range(n):
            buf[i] = self.reply[i]
        return n


class FakeTime:
    """hw.ticks_ms() and asyncio.sleep_ms() on a clock that each sleep advances."""

    def __init__(self):
        self.now = 1000
        self.locked = False
        self.sleep = asyncio.sleep_ms

    def ticks_ms(self):
        return self.now

    def sleep_ms(self, ms):
        self.now += ms if ms < 50 else 50  # interleave the tasks finely
        return self.sleep(0)  # a singleton generator: no allocation


def main():
    s = settings.Settings()
    s.program = settings.compile_outputs({"outputs": [
        {"name": "charger", "when": {"all": [{"soc": {"below": 80, "hyst": 10}},
                                             {"cell_max_v": {"on": 3.40, "off": 3.55}}]}},
        {"name": "fan", "when": {"soc": {"above": 101}}, "fail_safe": "on"},
        {"name": "alarm", "when": {"protection": "any"}, "inverted": True, "fail_safe": "on"}]})
    ctx = Ctx()
    ctx.settings = s
    ctx.model = Model()
    ctx.log = EventLog()
    ctx.engine = LinkEngine(ctx.model, s.link, ctx.log)
    ctx.store = StateStore(hw.storage_root())
    ctx.client_ms = -1
    ctx.flags = bytearray(8)
    ctx.changed = asyncio.Event()
    ctx.pins = {"acc": hw.Output("acc"), "supply_enable": hw.Output("supply_enable")}
    rules = Engine(s.program, ctx.log)
    outs = outputs.Outputs(ctx, rules, Energy(None), ctx.flags)
    wake = accwake.AccWake(ctx, rules, ctx.flags)
    st = Status()
    st.cell_count = 16
    st.probe_slots = 2
    for i in range(16):
        st.cells_mv[i] = 3300 + i
    st.pack_cv = 5300
    st.current_da = 42
    st.soc_pct = 60
    link = bmslink.BmsLink(ctx.engine, CannedBms(new.build_status(st)), ctx.changed)
    clock = FakeTime()
    hw.ticks_ms = clock.ticks_ms
    asyncio.sleep_ms = clock.sleep_ms
    result = {}

    async def referee(tasks):
        while clock.now < _WARM_MS:
            await asyncio.sleep_ms(10)
        frames, evaluations, acc_steps = ctx.model.generation, outs.evaluations, ctx.acc_steps
        micropython.heap_lock()
        while clock.now < _WARM_MS + _LOCKED_MS:
            await asyncio.sleep_ms(10)
        micropython.heap_unlock()
        # A task that allocated died of MemoryError: it is done.
        result["alive"] = [not t.done() for t in tasks]
        result["link_ok"] = ctx.model.link == LINK_OK
        result["frames"] = ctx.model.generation - frames
        result["evaluations"] = outs.evaluations - evaluations
        result["acc_steps"] = ctx.acc_steps - acc_steps
        result["holding"] = outs.holding
        result["charger_on"] = rules.state(0)

    async def run():
        tasks = [asyncio.create_task(link.run()), asyncio.create_task(outs.run()),
                 asyncio.create_task(wake.run())]
        await referee(tasks)
        for t in tasks:
            t.cancel()

    step = wake.step

    def counted_step(now):
        ctx.acc_steps += 1
        step(now)

    ctx.acc_steps = 0
    wake.step = counted_step
    try:
        asyncio.run(run())
    except MemoryError:
        micropython.heap_unlock()
        result["scheduler_allocated"] = True
    print(json.dumps(result))


main()
'''


def alloc_probe(workdir, heap=HEAP):
    """Run ALLOC_PROBE; its result dict."""
    workdir = os.path.join(str(workdir), "alloc")
    data = os.path.join(workdir, "data")
    os.makedirs(data, exist_ok=True)
    path = os.path.join(workdir, "alloc_probe.py")
    with open(path, "w") as f:
        f.write(ALLOC_PROBE)
    rt = runtime()
    env = dict(os.environ, MICROPYPATH=rt.micropath, ANTBRIDGE_DATA=data,
               ANTBRIDGE_BOARDS=os.path.join(ROOT, "boards"))
    env.pop("ANTBRIDGE_SIM_CONTROL", None)
    r = subprocess.run([rt.micropython, "-X", "heapsize=" + heap, path], cwd=workdir, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "on MicroPython %s, heap %s:\n%s%s" % (rt.label(), heap, r.stdout, r.stderr)
    result = json.loads(r.stdout.strip().splitlines()[-1])
    result["interpreter"] = "MicroPython %s, heap %s" % (rt.label(), heap)
    return result
