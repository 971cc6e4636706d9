"""Run tools/bmssim.py as a subprocess for end-to-end tests.

    from simproc import SimProcess

    with SimProcess("--protocol", "old", "--cells", "20", pty=True) as sim:
        sock = sim.connect()                     # the BMS's TTL port (TCP)
        sock.sendall(bytes.fromhex("5a5a00000101"))
        frames = sim.read_frames(sock, count=1)  # [(kind, bytes)] via lib/ant Framer
        state = sim.state()                      # == sim.control("state")["state"]
        sim.control("acc 1")                     # {"ok": True}
        sim.control("fault drop 0.5")            # {"ok": True}
        serial.Serial(sim.pty, 19200, timeout=1) # with pty=True

SimProcess(*args, pty=False, ready_timeout=10.0, quiet=True)
    args are extra bmssim.py options (strings); --tcp/--control use free
    ports on 127.0.0.1, --ready-file lives in a private temporary folder.
    pty=True adds --pty <tmpdir>/ttyBMS.
start() -> self           starts it and waits for the ready file (raises
                          RuntimeError with the simulator's stderr if it dies)
.tcp_port, .control_port, .pty (path or None), .pid, .ready (the dict)
control(cmd) -> dict      one control-port command, the parsed JSON reply
state() -> dict           control("state")["state"], raising if not ok
connect(timeout=2.0)      a new TCP socket to the BMS port (TCP_NODELAY)
read_frames(sock, count=1, timeout=1.0) -> [(kind, bytes)]
                          valid frames read from sock until `count` were
                          found or `timeout` s passed
read_raw(sock, duration=0.5) -> bytes   everything that arrives within
                          `duration` s
stderr_text() -> str      what the simulator logged (pass quiet=False)
stop(timeout=5.0) -> int  SIGTERM, wait, return the exit code (kills it
                          after `timeout`); also closes the control socket
Also a context manager (start on enter, stop on exit).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIMULATOR = os.path.join(ROOT, "tools", "bmssim.py")
if os.path.join(ROOT, "lib") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, "lib"))

from ant.framer import Framer  # noqa: E402


def _chunks(sock, deadline):
    """What arrives on `sock` until the monotonic `deadline`, the peer
    closes, or nothing more comes in time."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        sock.settimeout(left)
        try:
            data = sock.recv(4096)
        except socket.timeout:
            return
        if not data:
            return
        yield data


class SimProcess:
    def __init__(self, *args, pty=False, ready_timeout=10.0, quiet=True):
        self.args = [str(a) for a in args]
        self.use_pty = pty
        self.ready_timeout = ready_timeout
        self.quiet = quiet
        self.proc = None
        self.ready = None
        self.tcp_port = None
        self.control_port = None
        self.pty = None
        self.pid = None
        self._dir = None
        self._ctl = None
        self._ctl_file = None

    def start(self):
        self._dir = tempfile.mkdtemp(prefix="bmssim-")
        ready_file = os.path.join(self._dir, "ready.json")
        cmd = [sys.executable, SIMULATOR, "--tcp", "127.0.0.1:0", "--control", "127.0.0.1:0",
               "--ready-file", ready_file]
        if self.use_pty:
            cmd += ["--pty", os.path.join(self._dir, "ttyBMS")]
        if self.quiet:
            cmd.append("--quiet")
        cmd += self.args
        self._stderr = open(os.path.join(self._dir, "stderr.txt"), "w+")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._stderr)
        deadline = time.monotonic() + self.ready_timeout
        while not os.path.exists(ready_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._stderr.seek(0)
                err = self._stderr.read()
                self.stop()
                raise RuntimeError("bmssim did not start: " + err)
            time.sleep(0.02)
        with open(ready_file) as f:
            self.ready = json.load(f)
        self.tcp_port = self.ready["tcp"]
        self.control_port = self.ready["control"]
        self.pty = self.ready["pty"]
        self.pid = self.ready["pid"]
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def control(self, cmd):
        if self._ctl is None:
            self._ctl = socket.create_connection(("127.0.0.1", self.control_port), timeout=5.0)
            self._ctl_file = self._ctl.makefile("rwb")
        self._ctl_file.write(cmd.encode() + b"\n")
        self._ctl_file.flush()
        line = self._ctl_file.readline()
        if not line:
            raise RuntimeError("control port closed")
        return json.loads(line)

    def state(self):
        reply = self.control("state")
        if not reply.get("ok"):
            raise RuntimeError("state failed: %r" % reply)
        return reply["state"]

    def connect(self, timeout=2.0):
        sock = socket.create_connection(("127.0.0.1", self.tcp_port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    @staticmethod
    def read_raw(sock, duration=0.5):
        """Everything that arrives within `duration` seconds."""
        out = bytearray()
        for data in _chunks(sock, time.monotonic() + duration):
            out += data
        return bytes(out)

    @staticmethod
    def read_frames(sock, count=1, timeout=1.0):
        """Valid frames [(kind, bytes)] until `count` were found or `timeout`
        seconds passed."""
        framer = Framer()
        frames = []
        if count <= 0:
            return frames
        for data in _chunks(sock, time.monotonic() + timeout):
            pos = 0
            while True:
                pos = framer.feed(data, pos)
                if not framer.kind:
                    break
                frames.append((framer.kind, bytes(framer.buf[framer.start : framer.start + framer.length])))
            if len(frames) >= count:
                break
        return frames

    def stderr_text(self):
        self._stderr.flush()
        with open(self._stderr.name) as f:
            return f.read()

    def stop(self, timeout=5.0):
        if self._ctl is not None:
            self._ctl_file.close()
            self._ctl.close()
            self._ctl = None
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            code = self.proc.returncode
            self._stderr.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        return code
