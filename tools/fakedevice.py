#!/usr/bin/env python3
"""A fake MicroPython board on a pty, for `make deploy` without hardware.

The 32-bit ESP32-like unix port's REPL (build/mp/esp32like/micropython; with
--frozen the interpreter that has the firmware frozen in, like a board
flashed with `make firmware`'s image) runs under socat on a pseudo-terminal,
after tools/devboot.py has mapped the filesystem root "/" to a folder. mpremote
talks to it as to a board's USB serial port:

    .venv/bin/python tools/fakedevice.py --root /tmp/dev      # prints the pty, Ctrl-C stops it
    make deploy PORT=/tmp/dev.tty BOARD=esp32-devkitc RESUME=1 NO_RESET=1
    find /tmp/dev

What differs from a board: the unix port exits on a soft reset (so mpremote
must always `resume`, deploy --resume) and has no machine.reset() (deploy
--no-reset); files are host files in the folder.

    from fakedevice import FakeDevice
    with FakeDevice(root) as dev:      # dev.port: the pty path
        ...
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOT = os.path.join(ROOT, "tools", "devboot.py")
MPREMOTE = os.path.join(ROOT, ".venv", "bin", "mpremote")
# socat splits its EXEC: string itself (no shell quoting): refuse what it
# would misread rather than start something else.
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./+@-]+$")


class FakeDeviceError(Exception):
    pass


def _interpreter(frozen):
    sys.path.insert(0, os.path.join(ROOT, "host_tests"))
    import mpbuild

    return mpbuild.micropython(frozen=frozen, bits=32)


class FakeDevice:
    """The unix port's REPL on a pty (`port`), its "/" mapped to `root`.
    `heap`: the interpreter's heap, a WROOM-sized one by default (the deploy's
    scripts on the device must fit what a board has)."""

    def __init__(self, root, frozen=False, heap="128K", port=None, micropython=None):
        self.root = os.path.abspath(root)
        self.frozen = frozen
        self.heap = heap
        self.port = os.path.abspath(port or self.root.rstrip("/") + ".tty")
        self.micropython = micropython
        self.proc = None
        self._log = None

    def start(self, timeout_s=15):
        if shutil.which("socat") is None:
            raise FakeDeviceError("socat is not installed (make setup installs it: Debian package socat)")
        os.makedirs(self.root, exist_ok=True)
        exe = self.micropython or _interpreter(self.frozen)
        for path in (exe, BOOT, self.port):
            if not _SAFE_PATH.match(path):
                raise FakeDeviceError("path %r: socat's EXEC cannot take spaces or , : ! \" ' in it" % path)
        if os.path.lexists(self.port):
            os.remove(self.port)
        env = dict(os.environ, DEVFS=self.root)
        env.pop("MICROPYPATH", None)
        self._log = open(self.port + ".log", "w+")
        cmd = ["socat", "PTY,link=%s,raw,echo=0" % self.port,
               "EXEC:%s -X heapsize=%s -i %s,pty,stderr,setsid,ctty,raw,echo=0" % (exe, self.heap, BOOT)]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise FakeDeviceError("socat exited with code %s: %s" % (self.proc.returncode, self.log()[-500:]))
            if os.path.exists(self.port) and self._answers():
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise FakeDeviceError("the fake device did not answer on %s within %d s" % (self.port, timeout_s))
            time.sleep(0.1)

    def _answers(self):
        """The REPL runs and "/" is the folder (mpremote, as a deploy uses it)."""
        probe = "import os; print('fakedevice', os.getcwd(), len(os.listdir('/')))"
        try:
            r = subprocess.run([MPREMOTE, "connect", self.port, "resume", "exec", probe], capture_output=True,
                               text=True, timeout=5)
        except subprocess.TimeoutExpired:
            return False
        return r.returncode == 0 and "fakedevice / " in r.stdout

    def log(self):
        if self._log is None:
            return ""
        self._log.flush()
        with open(self._log.name) as f:
            return f.read()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # socat ends its child with it
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
        if os.path.lexists(self.port):
            os.remove(self.port)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True, help="the folder that is the device's filesystem")
    p.add_argument("--frozen", action="store_true", help="the interpreter with the firmware frozen in (a board "
                   "flashed with make firmware's image) instead of stock MicroPython")
    p.add_argument("--port", help="the pty's path (default ROOT.tty)")
    args = p.parse_args(argv)
    dev = FakeDevice(args.root, frozen=args.frozen, port=args.port)

    def _terminate(signum, frame):
        raise KeyboardInterrupt  # SIGTERM too: stop socat and the interpreter on the way out

    signal.signal(signal.SIGTERM, _terminate)
    try:
        dev.start()
        print("fake device on %s, its / is %s (Ctrl-C stops it)" % (dev.port, dev.root), flush=True)
        while dev.proc.poll() is None:
            time.sleep(0.5)
        print("fakedevice: the interpreter exited (a soft reset? always use mpremote ... resume)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except FakeDeviceError as e:
        print("fakedevice:", e, file=sys.stderr)
        return 1
    finally:
        dev.stop()


if __name__ == "__main__":
    sys.exit(main())
