#!/usr/bin/env python3
"""`make bench`: what the firmware costs, measured on this PC's ESP32-like
MicroPython; writes bench/results.json and prints a table.

  heap     the smallest heap (1 KB bisection) at which the whole firmware,
           started exactly as `make run` starts it (tools/run.py build,
           start_simulator, start_firmware, make run's settings and
           simulator options), runs clean for a probe (75 s) under 4
           concurrent HTTP clients reading /api/status, /, /api/events and
           /metrics in turn: every request answered, no 5xx but the 503 of a
           full connection cap (a 503 for lack of memory counts as a failure),
           no task crash (/api/health), no MemoryError in its output, live
           data at the end. The minimum found is then confirmed: 5 fresh
           starts of 30 s, then 10 min, all clean (else 1 KB more, again).
           Configurations:
           frozen on the 32-bit build, .mpy files on the 32-bit build,
           frozen on the 64-bit build (comparison); two at a time on a
           2-core machine.
  decode   ant.new/ant.old decode_status per status frame (frames from
           lib/ant's builders, 8/16/20/24 cells) on the 32-bit build, as a
           share of the frame's wire time at 19200 baud (10 bits a byte).
  rate     fresh status frames per second with the link at its fastest poll
           (poll_floor_ms = poll_ms = 50) against the simulator at a fixed
           reply latency, and the line's limit: request + latency + reply.
  cpu      the firmware's user+system CPU seconds per minute at make run's
           1 s poll (/proc/<pid>/stat), waiting on the UART (link.rx "wait",
           the design) and reading it every 10 ms (link.rx "poll", the old
           design).

Timing figures come from an x86 core and say nothing absolute about an
ESP32; ratios and heap sizes carry over (the 32-bit build has the ESP32's
object sizes). --quick shortens everything (the smoke test).
"""
import argparse
import concurrent.futures
import datetime
import http.client
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "lib"))
import run  # noqa: E402  (tools/run.py: exactly how `make run` starts things)

mpbuild = run.mpbuild
OUT = os.path.join(ROOT, "build", "bench")
RESULTS = os.path.join(ROOT, "bench", "results.json")
CLIENTS = 4
PATHS = ("/api/status", "/", "/api/events", "/metrics")
# make run's simulator (tools/run.py main(): --protocol new --cells 16 --idle-sleep-s 120)
MAKE_RUN_SIM = ["--protocol", "new", "--cells", "16", "--idle-sleep-s", "120", "--quiet"]
BAUD = 19200
BITS_PER_BYTE = 10
CELLS = (8, 16, 20, 24)
RATE_LATENCY_MS = 20  # fixed simulator reply latency for the rate run (real units: 20-150 ms)
RATE_POLL_MS = 50  # the fastest poll settings allow (link.poll_floor_ms >= 50)
RATE_CELLS = 16
SIM_PROBE_SLOTS = 2  # the simulator's default probes (--temps 2): the new frame's probe block


class Config:
    def __init__(self, name, deploy, bits, lo_kb, hi_kb):
        self.name = name
        self.deploy = deploy
        self.bits = bits
        self.lo_kb = lo_kb  # first guesses: checked, widened if wrong
        self.hi_kb = hi_kb


CONFIGS = {
    "frozen-32": Config("frozen-32", "frozen", 32, 48, 128),
    "mpy-32": Config("mpy-32", "mpy", 32, 160, 448),
    "frozen-64": Config("frozen-64", "frozen", 64, 64, 256),
}


class BenchError(Exception):
    pass


class Settings:
    """Durations and sizes (full run or --quick)."""

    def __init__(self, quick):
        self.quick = quick
        self.probe_s = 5 if quick else 75
        self.confirm_s = 8 if quick else 600
        self.confirm_steps = 2 if quick else 8
        # Near the minimum a run fails in its first seconds or not at all
        # (the first concurrent requests meet a fragmented heap), so a
        # confirmation starts the firmware afresh this many times (short
        # runs) before the long one.
        self.restarts = 1 if quick else 5
        self.restart_s = 5 if quick else 30
        self.resolution_kb = 16 if quick else 1
        self.think_ms = 20  # per client between requests: 4 clients keep the 2 request slots busy
        self.decode_iterations = 200 if quick else 2000
        self.decode_repeats = 2 if quick else 15  # the best of these: the least disturbed by other work
        self.rate_s = 3 if quick else 30
        self.cpu_s = 5 if quick else 60  # CPU time counts in 10 ms ticks: enough of them
        self.warmup_s = 1 if quick else 10


_ports_lock = threading.Lock()
_ports_given = set()


def _free_port():
    """A free TCP port no other run of this process was given."""
    with _ports_lock:
        for _ in range(50):
            port = run.free_port()
            if port not in _ports_given:
                _ports_given.add(port)
                return port
    raise BenchError("no free TCP port")


# -- one firmware under the simulator, as make run starts it ------------------------------------


class Runtimes:
    """run.build() once per deployment; the 64-bit binary swapped in for
    bits=64 (mpbuild.micropython(bits=64): the same variant without -m32)."""

    def __init__(self, out):
        self.out = out
        self._lock = threading.Lock()
        self._built = {}

    def get(self, deploy, bits):
        with self._lock:
            key = (deploy, bits)
            if key not in self._built:
                rt = run.build(os.path.join(self.out, "run-" + deploy), deploy)
                if bits != 32:
                    rt = run.Runtime(mpbuild.micropython(frozen=deploy == "frozen", bits=bits), rt.micropath, deploy)
                self._built[key] = rt
            return self._built[key]


class Bridge:
    """Simulator + firmware in workdir (make run's settings), or BenchError."""

    def __init__(self, runtime, workdir, heap, sim_args=MAKE_RUN_SIM, settings=None):
        self.workdir = workdir
        shutil.rmtree(workdir, ignore_errors=True)
        self.data = os.path.join(workdir, "data")
        os.makedirs(self.data)
        written = run.write_settings(self.data)  # make run's: a token and the demo outputs
        if settings:
            written.update(settings)
            with open(os.path.join(self.data, "settings.json"), "w") as f:
                json.dump(written, f)
        self.log_path = os.path.join(workdir, "firmware.log")
        self.sim = self.fw = None
        self._log = open(self.log_path, "w+b")
        try:
            self.sim, ready = run.start_simulator(workdir, sim_args, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL)
        except run.RunError as e:
            self._log.close()
            raise BenchError("the simulator: %s" % e)
        for _ in range(3):
            self.port = _free_port()
            self.fw = run.start_firmware(runtime, self.data, ready, self.port, heap, stdout=self._log,
                                         stderr=self._log)
            try:
                run.wait_http(self.port, self.fw, timeout_s=60)
                return
            except run.RunError as e:
                if "EADDRINUSE" in self.log() or "Address already in use" in self.log():
                    run.stop(self.fw)
                    continue  # someone took the port meanwhile: not the heap's fault
                self.stop()
                raise BenchError("did not start: %s: %s" % (e, self.log_tail()))
        self.stop()
        raise BenchError("did not start: no free HTTP port")

    def log(self):
        if not self._log.closed:
            self._log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_tail(self, lines=3):
        return " | ".join(self.log().strip().splitlines()[-lines:])

    def request(self, path, timeout_s=30):
        """(status, body bytes) of one GET."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout_s)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def get_json(self, path):
        status, body = self.request(path)
        if status != 200:
            raise BenchError("%s answered %d: %s" % (path, status, body[:200]))
        return json.loads(body)

    def wait_live(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        doc = None
        while time.monotonic() < deadline:
            try:
                doc = self.get_json("/api/status")
                if doc.get("live"):
                    return doc
            except (OSError, ValueError, BenchError, http.client.HTTPException):
                pass
            time.sleep(0.25)
        return None

    def stop(self):
        run.stop(self.fw)
        run.stop(self.sim)
        if not self._log.closed:
            self._log.close()


# -- heap: one probe ---------------------------------------------------------------------------


class Clients:
    """CLIENTS threads, each reading PATHS in turn (each from its own
    starting point, so every endpoint is in flight together)."""

    def __init__(self, bridge, think_ms):
        self.bridge = bridge
        self.think_s = think_ms / 1000.0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.requests = 0
        self.by_status = {}
        self.busy_503 = 0
        self.failures = []  # first few failed requests, as text
        self.failed = 0
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(CLIENTS)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _record(self, path, status, body, error=None):
        with self.lock:
            self.requests += 1
            key = str(status) if error is None else "error"
            self.by_status[key] = self.by_status.get(key, 0) + 1
            bad = error is not None or status >= 500
            if status == 503 and error is None:
                reason = _reason(body)
                if "memory" not in reason:
                    self.busy_503 += 1  # the connection cap: refused on purpose
                    bad = False
            if bad:
                self.failed += 1
                if len(self.failures) < 5:
                    self.failures.append("%s: %s" % (path, error or "%d %s" % (status, body[:120].decode("utf-8", "replace"))))

    def _run(self, index):
        i = index
        while not self.stop.is_set():
            path = PATHS[i % len(PATHS)]
            i += 1
            try:
                status, body = self.bridge.request(path)
                self._record(path, status, body)
            except (OSError, http.client.HTTPException) as e:
                if self.stop.is_set():
                    return
                self._record(path, 0, b"", "%s %s" % (type(e).__name__, e))
            if self.think_s:
                self.stop.wait(self.think_s)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)


def _reason(body):
    try:
        return str(json.loads(body).get("reason", ""))
    except (ValueError, AttributeError):
        return ""


def probe(runtime, workdir, heap_kb, duration_s, think_ms):
    """Run the firmware at heap_kb for duration_s under the clients; a
    result dict with "ok" and the reason when not. Stops early at the
    first failure."""
    t0 = time.monotonic()
    result = {"heap_kb": heap_kb, "ok": False, "reason": None, "seconds": 0, "requests": 0}
    try:
        bridge = Bridge(runtime, workdir, "%dK" % heap_kb)
    except BenchError as e:
        result["reason"] = str(e)
        result["seconds"] = round(time.monotonic() - t0, 1)
        return result
    clients = Clients(bridge, think_ms).start()
    reason = None
    health = None
    try:
        deadline = time.monotonic() + duration_s
        next_health = time.monotonic() + 15
        while time.monotonic() < deadline and reason is None:
            time.sleep(0.5)
            if bridge.fw.poll() is not None:
                reason = "the firmware exited (code %s): %s" % (bridge.fw.returncode, bridge.log_tail())
            elif clients.failed:
                reason = "failed requests: " + "; ".join(clients.failures)
            elif "MemoryError" in bridge.log():
                reason = "MemoryError in the output: " + bridge.log_tail()
            elif time.monotonic() >= next_health:
                next_health += 15
                health, reason = _health(bridge)
        clients.finish()
        if reason is None and clients.failed:
            reason = "failed requests: " + "; ".join(clients.failures)
        if reason is None:
            health, reason = _health(bridge)
        if reason is None:
            doc = bridge.wait_live(15)
            if doc is None:
                reason = "no live data at the end"
        if reason is None and "MemoryError" in bridge.log():
            reason = "MemoryError in the output: " + bridge.log_tail()
    finally:
        clients.finish()
        bridge.stop()
    if reason is None and "MemoryError" in bridge.log():
        reason = "MemoryError in the output at stop: " + bridge.log_tail()
    result.update(ok=reason is None, reason=reason, seconds=round(time.monotonic() - t0, 1),
                  requests=clients.requests, by_status=dict(sorted(clients.by_status.items())),
                  busy_503=clients.busy_503)
    if health is not None:
        result["heap_free_end"] = health.get("heap_free")
        result["heap_min_free"] = health.get("heap_min_free")
    if reason is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def _health(bridge):
    try:
        health = bridge.get_json("/api/health")
    except (OSError, ValueError, BenchError, http.client.HTTPException) as e:
        return None, "/api/health failed: %s" % e
    if health.get("task_crashes"):
        return health, "task crashes: %s (%s)" % (health["task_crashes"], health.get("last_crash"))
    return health, None


def heap_minimum(config, runtimes, s, log):
    """Bisection between a failing and a passing heap, then confirmation."""
    runtime = runtimes.get(config.deploy, config.bits)
    base = os.path.join(OUT, config.name)
    probes = []

    def attempt(kb, duration_s):
        r = probe(runtime, os.path.join(base, "heap-%dK" % kb), kb, duration_s, s.think_ms)
        r["duration_s"] = duration_s
        probes.append(r)
        log("%s: %dK %s (%.0f s%s)" % (config.name, kb, "ok" if r["ok"] else "FAILED", r["seconds"],
                                       "" if r["ok"] else ": " + str(r["reason"])[:160]))
        return r["ok"]

    hi = config.hi_kb
    while not attempt(hi, s.probe_s):
        hi = hi * 3 // 2
        if hi > 4096:
            raise BenchError("%s: no heap up to 4 MB runs clean" % config.name)
    lo = min(config.lo_kb, hi - s.resolution_kb)
    while lo > 8 and attempt(lo, s.probe_s):
        hi = lo
        lo = lo // 2
    while hi - lo > s.resolution_kb:
        mid = (lo + hi) // 2
        if attempt(mid, s.probe_s):
            hi = mid
        else:
            lo = mid
    minimum = hi
    confirmed = None
    kb = minimum
    for _ in range(s.confirm_steps):
        if all(attempt(kb, s.restart_s) for _ in range(s.restarts)) and attempt(kb, s.confirm_s):
            confirmed = kb
            break
        kb += s.resolution_kb
    return {"name": config.name, "deploy": config.deploy, "bits": config.bits, "interpreter": runtime.label(),
            "min_heap_kb": minimum, "confirmed_kb": confirmed, "confirm_s": s.confirm_s, "probe_s": s.probe_s,
            "confirm_restarts": s.restarts, "restart_s": s.restart_s,
            "resolution_kb": s.resolution_kb, "probes": probes}


# -- decode cost -------------------------------------------------------------------------------

_DECODE_SCRIPT = r"""
import sys, time, json
from ant import new, old
from ant.status import Status

ITER = int(sys.argv[1])
REPEATS = int(sys.argv[2])
PROBES = int(sys.argv[3])
cells_list = [int(c) for c in sys.argv[4].split(",")]


def source(n):
    st = Status()
    st.cell_count = n
    for i in range(n):
        st.cells_mv[i] = 3300 + (i * 7) % 40
    st.probe_slots = PROBES
    st.probe_count = PROBES
    for i in range(PROBES):
        st.temps_c[i] = 21 + i
    st.pack_cv = 33 * n * 10
    st.current_da = -125
    st.soc_pct = 70
    st.capacity_mah = 100000
    st.remaining_mah = 70000
    return st


def best_us(fn, frame, st):
    best = None
    for _ in range(REPEATS):
        t0 = time.ticks_us()
        for _ in range(ITER):
            fn(frame, 0, st)
        t1 = time.ticks_us()
        for _ in range(ITER):
            pass
        t2 = time.ticks_us()
        us = (time.ticks_diff(t1, t0) - time.ticks_diff(t2, t1)) / ITER
        best = us if best is None or us < best else best
    return best


for n in cells_list:
    for name, gen in (("new", new), ("old", old)):
        frame = gen.build_status(source(n))
        st = Status()
        if gen.decode_status(frame, 0, st) != 0 or st.cell_count != n:
            raise SystemExit("decode of a %s %d-cell frame failed" % (name, n))
        print(json.dumps({"protocol": name, "cells": n, "frame_bytes": len(frame), "decode_us": best_us(gen.decode_status, frame, st)}))
"""


def decode_cost(runtimes, s):
    runtime = runtimes.get("mpy", 32)  # lib/ as .mpy files, 32-bit (run.build compiled it)
    script = os.path.join(OUT, "decode_bench.py")
    os.makedirs(OUT, exist_ok=True)
    with open(script, "w") as f:
        f.write(_DECODE_SCRIPT)
    lib = [p for p in runtime.micropath.split(":") if p.endswith("/lib")]
    env = dict(os.environ, MICROPYPATH=":".join([".frozen"] + lib))
    r = subprocess.run([runtime.micropython, script, str(s.decode_iterations), str(s.decode_repeats),
                        str(SIM_PROBE_SLOTS), ",".join(str(c) for c in CELLS)],
                       capture_output=True, text=True, env=env, timeout=600)
    if r.returncode:
        raise BenchError("decode benchmark failed: %s" % (r.stdout + r.stderr)[-800:])
    rows = []
    for line in r.stdout.splitlines():
        row = json.loads(line)
        wire_us = row["frame_bytes"] * BITS_PER_BYTE * 1e6 / BAUD
        row["decode_us"] = round(row["decode_us"], 2)
        row["wire_us"] = round(wire_us, 1)
        row["ratio"] = float("%.4g" % (row["decode_us"] / row["wire_us"]))
        rows.append(row)
    return {"interpreter": mpbuild.interpreter_label(runtime.micropython) + ", lib/ as .mpy files",
            "iterations": s.decode_iterations, "repeats": s.decode_repeats,
            "probe_slots": SIM_PROBE_SLOTS, "baud": BAUD, "rows": rows}


# -- the link's fresh-status rate ----------------------------------------------------------------


def line_limit(protocol, cells, latency_ms):
    """Status frames per second the line carries: request + reply on the
    wire at 19200 baud (10 bits a byte) + the reply latency."""
    from ant import commands, new, old

    request = len(commands.status_request(2 if protocol == "new" else 1))
    reply = new.status_frame_length(cells, SIM_PROBE_SLOTS) if protocol == "new" else old.FRAME_LEN
    byte_ms = BITS_PER_BYTE * 1000.0 / BAUD
    cycle_ms = (request + reply) * byte_ms + latency_ms
    return request, reply, cycle_ms


def link_rate(runtimes, s, protocol):
    runtime = runtimes.get("frozen", 32)
    sim_args = ["--protocol", protocol, "--cells", str(RATE_CELLS), "--reply-latency-ms", str(RATE_LATENCY_MS),
                "--quiet"]
    bridge = Bridge(runtime, os.path.join(OUT, "rate-" + protocol), run.DEFAULT_HEAP, sim_args,
                    {"link": {"poll_ms": RATE_POLL_MS, "poll_floor_ms": RATE_POLL_MS}})
    try:
        if bridge.wait_live(30) is None:
            raise BenchError("rate %s: no live data: %s" % (protocol, bridge.log_tail()))
        time.sleep(s.warmup_s / 2)
        t0, a = time.monotonic(), bridge.get_json("/api/status")["link"]["stats"]
        time.sleep(s.rate_s)
        t1, b = time.monotonic(), bridge.get_json("/api/status")["link"]["stats"]
    finally:
        bridge.stop()
    frames = b["frames_ok"] - a["frames_ok"]
    polls = b["polls"] - a["polls"]
    request, reply, cycle_ms = line_limit(protocol, RATE_CELLS, RATE_LATENCY_MS)
    rate = frames / (t1 - t0)
    limit = 1000.0 / cycle_ms
    return {"protocol": protocol, "cells": RATE_CELLS, "poll_ms": RATE_POLL_MS, "latency_ms": RATE_LATENCY_MS,
            "request_bytes": request, "reply_bytes": reply, "seconds": round(t1 - t0, 2), "frames": frames,
            "polls": polls, "frames_per_s": round(rate, 3), "limit_per_s": round(limit, 3),
            "ratio": round(rate / limit, 3),
            # the simulator charges the reply's wire time and latency, not the request's
            "sim_limit_per_s": round(1000.0 / (cycle_ms - request * BITS_PER_BYTE * 1000.0 / BAUD), 3)}


# -- CPU per minute ----------------------------------------------------------------------------


def _cpu_s(pid):
    """utime + stime of a process, in seconds (/proc/<pid>/stat fields 14, 15)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def cpu_per_minute(runtimes, s, rx):
    runtime = runtimes.get("frozen", 32)
    bridge = Bridge(runtime, os.path.join(OUT, "cpu-" + rx), run.DEFAULT_HEAP, MAKE_RUN_SIM, {"link": {"rx": rx}})
    try:
        if bridge.wait_live(30) is None:
            raise BenchError("cpu %s: no live data: %s" % (rx, bridge.log_tail()))
        time.sleep(s.warmup_s)
        t0, c0 = time.monotonic(), _cpu_s(bridge.fw.pid)
        a = bridge.get_json("/api/status")["link"]["stats"]
        time.sleep(s.cpu_s)
        t1, c1 = time.monotonic(), _cpu_s(bridge.fw.pid)
        doc = bridge.get_json("/api/status")
    finally:
        bridge.stop()
    if not doc["live"]:
        raise BenchError("cpu %s: the link was not live at the end" % rx)
    return {"rx": rx, "seconds": round(t1 - t0, 2), "cpu_s": round(c1 - c0, 3),
            "cpu_s_per_min": round((c1 - c0) * 60.0 / (t1 - t0), 3),
            "frames": doc["link"]["stats"]["frames_ok"] - a["frames_ok"]}


# -- the whole run -----------------------------------------------------------------------------


def machine():
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(), "python": platform.python_version()}


def git_commit():
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "lib", "firmware", "tools"], cwd=ROOT,
                               capture_output=True, text=True)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except OSError:
        return None


def bench(s, configs, jobs, log=print):
    t0 = time.monotonic()
    runtimes = Runtimes(OUT)
    for c in configs:  # build up front, one at a time (MicroPython's builds share a lock anyway)
        runtimes.get(c.deploy, c.bits)
    runtimes.get("frozen", 32)
    runtimes.get("mpy", 32)
    results = {"format": 1, "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "commit": git_commit(), "machine": machine(), "quick": s.quick, "jobs": jobs}
    # Timing first, alone: a parallel heap run would slow these down.
    log("decode cost ...")
    results["decode"] = decode_cost(runtimes, s)
    log("link rate ...")
    results["rate"] = [link_rate(runtimes, s, p) for p in ("new", "old")]
    log("cpu per minute ...")
    wait = cpu_per_minute(runtimes, s, "wait")
    poll = cpu_per_minute(runtimes, s, "poll")
    results["cpu"] = {"poll_ms": 1000, "wait": wait, "poll": poll,
                      "drop_pct": round(100.0 * (poll["cpu_s_per_min"] - wait["cpu_s_per_min"]) /
                                        poll["cpu_s_per_min"], 1) if poll["cpu_s_per_min"] else None}
    log("heap minima (%d at a time) ..." % jobs)
    heap = {"clients": CLIENTS, "paths": list(PATHS), "think_ms": s.think_ms, "configs": []}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(heap_minimum, c, runtimes, s, log) for c in configs]
        for f in futures:
            heap["configs"].append(f.result())
    results["heap"] = heap
    results["seconds"] = round(time.monotonic() - t0)
    return results


def table(r):
    """The results as text (also the README's table)."""
    m = r["machine"]
    lines = ["antbridge bench, %s, commit %s, %s (%s cores)%s" % (r["date"], r["commit"], m["cpu"], m["cores"],
                                                                  ", QUICK" if r["quick"] else "")]
    h = r["heap"]
    lines.append("")
    lines.append("heap minimum, %d HTTP clients (%s), 1 probe = %ss:" % (h["clients"], " ".join(h["paths"]),
                                                                       h["configs"][0]["probe_s"] if h["configs"] else "?"))
    for c in h["configs"]:
        confirmed = "%d KB clean in %d starts and %d s" % (c["confirmed_kb"], c["confirm_restarts"] + 1,
                                                          c["confirm_s"]) if c["confirmed_kb"] else "NOT confirmed"
        lines.append("  %-10s %-48s min %4d KB   %s" % (c["name"], c["interpreter"], c["min_heap_kb"], confirmed))
    d = r["decode"]
    lines.append("")
    lines.append("decode_status per frame vs its wire time at %d baud (%s):" % (d["baud"], d["interpreter"]))
    lines.append("  protocol cells  bytes  wire ms  decode us  decode/wire")
    for row in d["rows"]:
        lines.append("  %-8s %5d  %5d  %7.1f  %9.1f  %10.4f" % (row["protocol"], row["cells"], row["frame_bytes"],
                                                              row["wire_us"] / 1000, row["decode_us"], row["ratio"]))
    lines.append("")
    lines.append("fresh status rate at poll %d ms, simulator latency %d ms:" % (r["rate"][0]["poll_ms"],
                                                                               r["rate"][0]["latency_ms"]))
    for row in r["rate"]:
        lines.append("  %s %d cells: %.2f frames/s of the line's %.2f (%.0f %%; request %d + reply %d bytes)" % (
            row["protocol"], row["cells"], row["frames_per_s"], row["limit_per_s"], 100 * row["ratio"],
            row["request_bytes"], row["reply_bytes"]))
    c = r["cpu"]
    lines.append("")
    lines.append("firmware CPU at 1 s polls: wait on the UART %.2f s/min, poll it every 10 ms %.2f s/min (%s %% less)" % (
        c["wait"]["cpu_s_per_min"], c["poll"]["cpu_s_per_min"], c["drop_pct"]))
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short probes and few iterations (the smoke test)")
    p.add_argument("--configs", default=",".join(CONFIGS), help="heap configurations (default: %s)" % ",".join(CONFIGS))
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="heap configurations at a time")
    p.add_argument("--probe-s", type=float, help="seconds per bisection probe (default 75; quick 8)")
    p.add_argument("--confirm-s", type=float, help="seconds of the confirmation run (default 600; quick 12)")
    p.add_argument("--out", default=RESULTS, help="the results file (default bench/results.json)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    s = Settings(args.quick)
    if args.probe_s:
        s.probe_s = args.probe_s
    if args.confirm_s:
        s.confirm_s = args.confirm_s
    names = [n for n in args.configs.split(",") if n]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown or not names:
        print("bench: unknown configuration %s (known: %s)" % (", ".join(unknown), ", ".join(CONFIGS)),
              file=sys.stderr)
        return 2
    try:
        results = bench(s, [CONFIGS[n] for n in names], max(1, args.jobs), log=lambda m: print("bench:", m, flush=True))
    except (BenchError, run.RunError) as e:
        print("bench: %s" % e, file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    os.replace(tmp, args.out)
    print()
    print(table(results))
    print()
    print("bench: %s" % os.path.relpath(os.path.abspath(args.out), os.getcwd()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
