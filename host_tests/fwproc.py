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


def alloc_probe(workdir, heap=HEAP):
    """Run host_tests/fw_alloc_probe.py (the firmware's tasks and its status
    document under heap_lock) against the compiled firmware; its result."""
    workdir = os.path.join(str(workdir), "alloc")
    data = os.path.join(workdir, "data")
    os.makedirs(data, exist_ok=True)
    rt = runtime()
    paths = [p for p in rt.micropath.split(":") if not p.endswith("hostrt")]  # fakehw, not the host runtime
    env = dict(os.environ, MICROPYPATH=":".join(paths + [os.path.join(ROOT, "host_tests")]), ANTBRIDGE_DATA=data,
               ANTBRIDGE_BOARDS=os.path.join(ROOT, "boards"), ANTBRIDGE_ROOT=ROOT)
    env.pop("ANTBRIDGE_SIM_CONTROL", None)
    r = subprocess.run([rt.micropython, "-X", "heapsize=" + heap, os.path.join(ROOT, "host_tests", "fw_alloc_probe.py")],
                       cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, "on MicroPython %s, heap %s:\n%s%s" % (rt.label(), heap, r.stdout, r.stderr)
    result = json.loads(r.stdout.strip().splitlines()[-1])
    result["interpreter"] = "MicroPython %s, heap %s" % (rt.label(), heap)
    return result
