#!/usr/bin/env python3
"""`make run`: the whole firmware on this PC against the simulated BMS.

Runs the firmware as an ESP32-WROOM runs it: frozen into a 32-bit
MicroPython v1.28.0 with the ESP32 port's object model (built from source on
first use, tools/micropython_builds/interp.py), with a device-sized heap,
against the BMS simulator (tools/bmssim.py). Only the hardware layer is
swapped: tools/hostrt/hw.py is frozen in place of firmware/hw.py (the
interpreter's manifest, tools/micropython_builds/unix_frozen_manifest.py);
its UART is a TCP connection to the simulator. Ctrl-C stops both; so does
either dying.

--deploy mpy (or ANTBRIDGE_DEPLOY=mpy, also for the end-to-end tests) runs
lib/, firmware/ and microdot as .mpy files from the filesystem instead, as a
stock firmware would load them: bytecode and strings then live in the heap
(tools/hostrt/hw.py, compiled to .mpy in build/run/, then comes first on the
path and shadows firmware/hw.py).
"""
import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "host_tests"))
import mpbuild  # noqa: E402
from mpbuild import compile_file, compile_tree  # noqa: E402

DEPLOYS = ("frozen", "mpy")
# The heap of `make run` and of the end-to-end tests (host_tests/fwproc.py),
# for the frozen firmware on the 32-bit build: the budget an ESP32-WROOM can
# spare (about 134 KB free at boot, shared with Wi-Fi). README "The
# interpreter" has the measured minimum.
DEFAULT_HEAP = "96K"
# The same firmware as .mpy files holds its bytecode and strings in the heap.
MPY_HEAP = "320K"
# The microdot modules the firmware imports (firmware/manifest.py freezes the same).
MICRODOT_MODULES = ("__init__", "microdot")


class RunError(Exception):
    pass


def microdot_source():
    """The venv's microdot package (pinned in requirements.txt)."""
    for base in sys.path + [os.path.join(ROOT, ".venv", "lib", "python3.11", "site-packages")]:
        candidate = os.path.join(base, "microdot")
        if os.path.isfile(os.path.join(candidate, "microdot.py")):
            return candidate
    import glob

    found = glob.glob(os.path.join(ROOT, ".venv", "lib", "python3*", "site-packages", "microdot"))
    if not found:
        raise RunError("microdot is not installed in .venv (make setup)")
    return found[0]


def _remove_orphans(src_dir, out_dir):
    """Delete .mpy files whose source is gone: a removed module must not
    stay importable here while it is missing on the device."""
    for dirpath, _dirs, files in os.walk(out_dir):
        for name in files:
            mpy = os.path.join(dirpath, name)
            src = os.path.join(src_dir, os.path.relpath(mpy, out_dir))[:-4] + ".py"
            if name.endswith(".mpy") and not os.path.exists(src):
                os.remove(mpy)


def deploy_mode(chosen=None):
    """"frozen" (the default) or "mpy": `chosen`, else $ANTBRIDGE_DEPLOY."""
    mode = chosen or os.environ.get("ANTBRIDGE_DEPLOY") or "frozen"
    if mode not in DEPLOYS:
        raise RunError("deployment %r: must be one of %s (ANTBRIDGE_DEPLOY / --deploy)" % (mode, ", ".join(DEPLOYS)))
    return mode


def default_heap(deploy):
    return DEFAULT_HEAP if deploy == "frozen" else MPY_HEAP


class Runtime:
    """What start_firmware() runs: the interpreter and its MICROPYPATH."""

    def __init__(self, micropython, micropath, deploy):
        self.micropython = micropython
        self.micropath = micropath
        self.deploy = deploy

    def label(self):
        """"esp32like 32-bit v1.28.0, firmware frozen" (from the binary)."""
        text = mpbuild.interpreter_label(self.micropython)
        return text if self.deploy == "frozen" else text + ", firmware as .mpy files"


def build(out, deploy=None):
    """The interpreter (built if needed) and the host runtime compiled into
    out/ (with lib/, firmware/ and microdot for the mpy deployment)."""
    deploy = deploy_mode(deploy)
    frozen = deploy == "frozen"
    # Frozen, the host runtime's hw.py is frozen in too (in place of the
    # ESP32's); as .mpy files it shadows the ESP32 one from the path.
    tops = () if frozen else (("lib", "lib"), ("firmware", "firmware"), ("tools/hostrt", "hostrt"))
    failures = []
    for top, sub in tops:
        _remove_orphans(os.path.join(ROOT, top), os.path.join(out, sub))
        failures += compile_tree(top, os.path.join(out, sub))
    if not frozen:
        src = microdot_source()
        for name in MICRODOT_MODULES:
            dst = os.path.join(out, "pkgs", "microdot", name + ".mpy")
            path = os.path.join(src, name + ".py")
            if not os.path.exists(dst) or os.path.getmtime(dst) < os.path.getmtime(path):
                result = compile_file(path, dst)
                if result.returncode:
                    failures.append((path, result.stderr.strip()))
    if failures:
        raise RunError("mpy-cross failed:\n" + "\n".join("%s: %s" % f for f in failures))
    if not frozen:
        # The dashboard page as a file next to dashboard.mpy, where
        # firmware/dashboard.py finds it (frozen, it is a module in flash).
        import webbuild

        try:
            page = webbuild.build(ROOT)
        except webbuild.BuildError as e:
            raise RunError("the dashboard page: %s" % e)
        shutil.copyfile(page["paths"]["gz"], os.path.join(out, "firmware", "index.html.gz"))
    try:
        micropython = mpbuild.micropython(frozen=frozen)
    except (mpbuild.interp.BuildError, mpbuild.interp.sources.SourceError) as e:
        raise RunError("the MicroPython interpreter: %s" % e)
    # Frozen: nothing of the firmware on the filesystem path. As .mpy files:
    # hostrt first, its hw.py shadows the ESP32 one.
    paths = [os.path.join(out, d) for d in ("hostrt", "firmware", "lib", "pkgs")]
    micropath = ".frozen" if frozen else ":".join([".frozen"] + paths)
    return Runtime(micropython, micropath, deploy)


def demo_outputs():
    """The rules a fresh `make run` starts with, so the outputs visibly act:
    DO1 the charger preset (SOC window + high-cell cut-off), DO2 off, DO3
    the alarm preset (normally energised, drops on a protection, stale data
    or a lost link). A real bridge's default is all three off."""
    sys.path.insert(0, os.path.join(ROOT, "lib"))
    from rules import presets

    charger = presets.get("charger")["outputs"][0]
    alarm = presets.get("alarm")["outputs"][0]
    return {"outputs": [charger, {"name": "do2", "mode": "off"}, alarm]}


def write_settings(data_dir):
    """Create data_dir/settings.json when there is none: a random API token
    and the demo outputs; returns that dict. An existing file is the user's:
    it is never rewritten (a removed api_token stays removed, which keeps
    control off), and None is returned; the firmware reports what it finds
    wrong in it. A path that cannot hold the file raises RunError."""
    path = os.path.join(data_dir, "settings.json")
    if os.path.exists(data_dir) and not os.path.isdir(data_dir):
        raise RunError("%s is not a directory (--data)" % data_dir)
    if os.path.lexists(path):
        if not os.path.isfile(path):
            raise RunError("%s is not a file: move it away (make run then creates a fresh one)" % path)
        return None
    settings = {"api_token": secrets.token_hex(16), "outputs": demo_outputs()}
    try:
        os.makedirs(data_dir, exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(settings, f, indent=1)
        os.replace(tmp, path)
    except OSError as e:
        raise RunError("cannot create %s: %s" % (path, e.strerror or e))
    return settings


def control_note(data_dir):
    """One line about the API token, for the start-up banner."""
    path = os.path.join(data_dir, "settings.json")
    try:
        with open(path) as f:
            settings = json.load(f)
    except (OSError, ValueError, RecursionError):
        return "(settings.json unreadable: the firmware says why in /api/health, and control is off)"
    if not isinstance(settings, dict) or not settings.get("api_token"):
        return "(no api_token in %s: control is off)" % path
    return "(TOKEN = api_token in %s)" % path


def _check_port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is fine
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise RunError("port %d is in use (another `make run`?): choose another with PORT=%d" % (port, port + 1))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_simulator(workdir, sim_args, stdout=None, stderr=None, timeout_s=15):
    """Start tools/bmssim.py on free ports; returns (process, ready dict)."""
    ready_file = os.path.join(workdir, "sim.json")
    if os.path.exists(ready_file):
        os.remove(ready_file)
    cmd = [sys.executable, os.path.join(ROOT, "tools", "bmssim.py"), "--tcp", "127.0.0.1:0",
           "--control", "127.0.0.1:0", "--ready-file", ready_file] + list(sim_args)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=stdout, stderr=stderr)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RunError("the simulator exited with code %s" % proc.returncode)
        try:
            with open(ready_file) as f:
                return proc, json.load(f)
        except (OSError, ValueError):
            time.sleep(0.05)
    proc.kill()
    raise RunError("the simulator did not become ready within %d s" % timeout_s)


def firmware_env(micropath, data_dir, sim_ready, http_port):
    env = dict(os.environ)
    env["ANTBRIDGE_HTTP_PORT"] = str(http_port)
    env["MICROPYPATH"] = micropath
    env["ANTBRIDGE_UART"] = "tcp:127.0.0.1:%d" % sim_ready["tcp"]
    env["ANTBRIDGE_SIM_CONTROL"] = "127.0.0.1:%d" % sim_ready["control"]
    env["ANTBRIDGE_DATA"] = data_dir
    env["ANTBRIDGE_BOARDS"] = os.path.join(ROOT, "boards")
    return env


def start_firmware(runtime, data_dir, sim_ready, http_port, heap=None, stdout=None, stderr=None, env=None):
    """boot.py then main.py, as the ESP32 runs them, on `runtime` (build());
    `env` adds variables."""
    heap = heap or default_heap(runtime.deploy)
    cmd = [runtime.micropython, "-X", "heapsize=" + heap, "-c", "import boot\nimport main"]
    full_env = firmware_env(runtime.micropath, data_dir, sim_ready, http_port)
    full_env.update(env or {})
    return subprocess.Popen(cmd, cwd=data_dir, env=full_env, stdout=stdout, stderr=stderr)


def wait_http(port, proc, timeout_s=20):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RunError("the firmware exited with code %s before serving HTTP" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RunError("the firmware did not serve HTTP on port %d within %d s" % (port, timeout_s))


def stop(proc, timeout_s=5):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _cells(text):
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text) from None
    if not 8 <= n <= 32:
        raise argparse.ArgumentTypeError("must be 8..32")
    return n


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--protocol", default="new", choices=("new", "old", "both"), help="the simulated BMS's protocol")
    p.add_argument("--cells", type=_cells, default=16, help="cells in series, 8..32 (default 16)")
    p.add_argument("--idle-sleep-s", type=float, default=120, help="simulated BMS sleeps after this many idle s (0 = never)")
    p.add_argument("--faults", default="", help='simulator faults, e.g. "drop=0.1,display=1000"')
    p.add_argument("--port", type=int, default=8080, help="HTTP port of the firmware (default 8080)")
    p.add_argument("--heap", help="MicroPython heap (default %s frozen, %s as .mpy)" % (DEFAULT_HEAP, MPY_HEAP))
    p.add_argument("--deploy", choices=DEPLOYS, help="frozen (default; ANTBRIDGE_DEPLOY) or mpy: the firmware as .mpy files")
    p.add_argument("--data", default=os.path.join(ROOT, "build", "run", "data"), help="the firmware's storage directory")
    p.add_argument("--sim-arg", action="append", default=[], help="extra simulator argument, e.g. --sim-arg=--password=SECRET (repeatable)")
    p.add_argument("--sim-log", action="store_true", help="show the simulator's log (control commands, connections)")
    p.add_argument("--control", action="append", metavar="LINE",
                   help="do not start anything: send LINE (e.g. 'fault silent 5'; 'help' lists them) to the "
                        "simulator of the running `make run` and print its JSON reply (repeatable). Exit 0 when "
                        "every reply is ok, 1 when one was refused or no simulator runs, 2 for an empty LINE")
    return p.parse_args(argv)


def control(out, lines):
    """Send control lines to the simulator started by a running `make run`;
    the exit code (0: every reply ok, 1: a refusal or no simulator, 2: an
    empty line)."""
    for line in lines:
        if not line.strip() or "\n" in line:
            print("run: --control needs one command, e.g. --control state (--control help lists them)",
                  file=sys.stderr)
            return 2
    ready = os.path.join(out, "sim.json")
    try:
        with open(ready) as f:
            port = json.load(f)["control"]
    except (OSError, ValueError, KeyError, TypeError):
        print("run: no running simulator (%s is missing: start `make run` first)" % ready, file=sys.stderr)
        return 1
    status = 0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            stream = s.makefile("rw")
            for line in lines:
                stream.write(line + "\n")
                stream.flush()
                reply = stream.readline().strip()
                if not reply:
                    raise OSError("the simulator closed the connection")
                print(reply)
                try:
                    ok = json.loads(reply).get("ok") is True
                except (ValueError, AttributeError):
                    ok = False
                if not ok:
                    status = 1
    except ConnectionRefusedError:
        print("run: no running simulator (nothing listens on control port %d: start `make run` first)" % port,
              file=sys.stderr)
        return 1
    except OSError as e:
        print("run: the simulator on control port %d did not answer: %s" % (port, e), file=sys.stderr)
        return 1
    return status


def main(argv=None):
    args = parse_args(argv)
    out = os.path.join(ROOT, "build", "run")
    if args.control:
        return control(out, args.control)
    sim = fw = None
    try:
        _check_port_free(args.port)
        runtime = build(out, args.deploy)
        heap = args.heap or default_heap(runtime.deploy)
        write_settings(args.data)
        # The simulated BMS falls asleep after 2 idle minutes with ACC low, as
        # real ones do; the bridge's default keep-awake holds ACC, so it does
        # not (set acc.keep_awake.mode "off" to watch a wake instead).
        sim_args = ["--protocol", args.protocol, "--cells", str(args.cells), "--idle-sleep-s", str(args.idle_sleep_s)]
        if not args.sim_log:
            sim_args.append("--quiet")
        if args.faults:
            sim_args += ["--faults", args.faults]
        sim, ready = start_simulator(out, sim_args + args.sim_arg)
        fw = start_firmware(runtime, args.data, ready, args.port, heap)
        wait_http(args.port, fw)
        base = "http://127.0.0.1:%d" % args.port
        print()
        print("antbridge firmware running (MicroPython %s, heap %s) against the simulated BMS" % (runtime.label(), heap))
        print("  dashboard:   %s/" % base)
        print("  status:      %s/api/status" % base)
        print("  events:      %s/api/events     health: %s/api/health" % (base, base))
        print("  Wi-Fi:       %s/setup   (set-up mode until a network is saved: join the simulated"
              " \"antbridge-sim\", password antbridge-sim)" % base)
        print("  command:     curl -X POST -H \"Authorization: Bearer $TOKEN\" -d '{\"command\": \"charge-off\"}' %s/api/command" % base)
        print("               " + control_note(args.data))
        print("  outputs:     %s/api/outputs    energy: %s/api/energy" % (base, base))
        print("  override:    curl -X POST -H \"Authorization: Bearer $TOKEN\" -d '{\"output\": 1, \"action\": \"on\", \"expiry_s\": 60}' %s/api/outputs" % base)
        print("  simulator:   .venv/bin/python tools/run.py --control 'fault silent 5'   (control port %d)" % ready["control"])
        print("               e.g. --control 'cell 3 3600' trips DO1's charger cut-off; --control sleep: ACC wakes it")
        print("Ctrl-C stops both.")
        sys.stdout.flush()
        while True:
            if fw.poll() is not None:
                if fw.returncode == 0:  # Ctrl-C reached it first: a normal stop
                    print("run: stopped")
                    return 0
                print("run: the firmware exited with code %s" % fw.returncode)
                return 1
            if sim.poll() is not None:
                print("run: the simulator exited with code %s" % sim.returncode)
                return 1
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("\nrun: stopping")
        return 0
    except RunError as e:
        print("run:", e, file=sys.stderr)
        return 1
    finally:
        stop(fw)
        stop(sim)
        if sim is not None and os.path.exists(os.path.join(out, "sim.json")):
            os.remove(os.path.join(out, "sim.json"))


if __name__ == "__main__":
    sys.exit(main())
