# `make deploy` (tools/deploy.py) against a fake board: the 32-bit ESP32-like
# unix port's REPL on a pty (tools/fakedevice.py), its "/" mapped to a
# temporary folder, driven by mpremote exactly as a board is (with --resume:
# the unix REPL exits on a soft reset; --no-reset: it has no machine.reset()).
# What cannot run here: esptool against a chip (its command line is checked
# against esptool's own parser instead) and the reset of a real board.
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import time
import urllib.request

import pytest

import deploy
import fakedevice
import interp
import mpbuild
import run
from simproc import SimProcess

ROOT = deploy.ROOT
BOARD = "esp32-devkitc"
# The deployed tree booted on the PC: the heap is make bench's subject, not
# this test's (a generous one, so only the layout can fail here).
BOOT_HEAP = "448K"
PROTECTED_CONTENT = {
    "state.json": b'{"energy": {"wh_in": 12345}, "outputs": {}}',
    "boots.json": b'{"crashed": 0}',
    "state.json.bad": b"{corrupt",
}


def _tree_files(root):
    """{"/path": bytes} of every file under root."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out["/" + os.path.relpath(path, root).replace(os.sep, "/")] = f.read()
    return out


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _expected_code_paths(src_root):
    """The device paths of the .mpy deployment, from the source tree and
    firmware/manifest.py's microdot list (not from tools/deploy.py)."""
    paths = {"/boot.py", "/main.py"}
    for top in ("lib", "firmware"):
        base = os.path.join(src_root, top)
        for dirpath, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                rel = os.path.relpath(os.path.join(dirpath, name), base).replace(os.sep, "/")
                if name.endswith(".py") and rel not in ("manifest.py", "boot.py", "main.py"):
                    paths.add("/lib/" + rel[:-3] + ".mpy")
    with open(os.path.join(ROOT, "firmware", "manifest.py")) as f:
        microdot = re.search(r"MICRODOT_MODULES = \(([^)]*)\)", f.read()).group(1)
    for name in re.findall(r'"([a-z_]+)\.py"', microdot):
        paths.add("/lib/microdot/%s.mpy" % name)
    return paths


class Session:
    def __init__(self, tmp):
        self.tmp = tmp
        self.src = os.path.join(tmp, "src")  # a copy of the tree: tests edit it, never the repository
        for top in ("lib", "firmware", "boards"):
            shutil.copytree(os.path.join(ROOT, top), os.path.join(self.src, top),
                            ignore=shutil.ignore_patterns("__pycache__"))
        self.out = os.path.join(tmp, "build")
        self.fs = os.path.join(tmp, "dev")
        self.device = None
        self.lines = []

    def start(self, frozen=False):
        self.device = fakedevice.FakeDevice(self.fs, frozen=frozen, port=os.path.join(self.tmp, "tty")).start()
        return self.device

    def stop(self):
        if self.device is not None:
            self.device.stop()
            self.device = None

    def deploy(self, **kw):
        self.lines = []
        kw.setdefault("resume", True)
        kw.setdefault("reset", False)
        return deploy.deploy(self.device.port, kw.pop("board", BOARD), out=self.out, echo=self.lines.append,
                             src_root=self.src, **kw)

    def output(self):
        return "\n".join(self.lines)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """One fake board, deployed once (the first deploy of a .mpy tree takes
    ~15 s through the REPL); it held a state.json etc. before."""
    s = Session(str(tmp_path_factory.mktemp("deploy")))
    os.makedirs(s.fs)
    for name, data in PROTECTED_CONTENT.items():
        with open(os.path.join(s.fs, name), "wb") as f:
            f.write(data)
    s.start()
    try:
        s.first_plan = s.deploy()
        s.first_output = s.output()
        s.first_files = _tree_files(s.fs)
        yield s
    finally:
        s.stop()


def test_the_first_deploy_lands_the_firmware_the_board_file_and_settings(session):
    files = session.first_files
    expected = _expected_code_paths(session.src) | {"/boards/%s.json" % BOARD, "/settings.json", "/.deploy.json"}
    expected |= {"/" + name for name in PROTECTED_CONTENT}
    assert set(files) == expected
    for name in ("boot.py", "main.py"):  # MicroPython runs these two by name: source
        with open(os.path.join(ROOT, "firmware", name), "rb") as f:
            assert files["/" + name] == f.read()
    with open(os.path.join(ROOT, "boards", BOARD + ".json"), "rb") as f:
        assert files["/boards/%s.json" % BOARD] == f.read()
    version = subprocess.run([mpbuild.micropython(), "-c", "import sys; print(sys.implementation._mpy & 0xff)"],
                             capture_output=True, text=True).stdout.strip()
    for path, data in files.items():
        if path.endswith(".mpy"):  # .mpy files the board's MicroPython loads
            assert data[:2] == b"M" + bytes([int(version)]), path
    settings = json.loads(files["/settings.json"])
    assert set(settings) == {"api_token", "board"} and settings["board"] == BOARD
    assert re.fullmatch(r"[0-9a-f]{32}", settings["api_token"])
    assert session.first_output.count(settings["api_token"]) == 1  # printed once
    manifest = json.loads(files["/.deploy.json"])
    assert manifest["files"] == {p: _sha(files[p]) for p in expected if p not in
                                 {"/settings.json", "/.deploy.json"} | {"/" + n for n in PROTECTED_CONTENT}}


def test_the_boards_own_files_survive_deploys(session):
    for name, data in PROTECTED_CONTENT.items():
        assert session.first_files["/" + name] == data
    path = os.path.join(session.fs, "settings.json")
    mine = {"api_token": "my-own-token-0123456789", "board": BOARD, "link": {"poll_ms": 2000}}
    with open(path, "w") as f:
        json.dump(mine, f)
    before = {p: (d, os.stat(os.path.join(session.fs, p[1:])).st_mtime_ns) for p, d in _tree_files(session.fs).items()
              if p[1:] in PROTECTED_CONTENT or p == "/settings.json"}
    session.deploy()
    after = {p: (d, os.stat(os.path.join(session.fs, p[1:])).st_mtime_ns) for p, d in _tree_files(session.fs).items()
             if p in before}
    assert after == before
    assert "my-own-token" not in session.output() and "settings.json: kept" in session.output()


def test_a_second_deploy_copies_nothing_and_an_edit_only_that_file(session):
    mtimes = {p: os.stat(os.path.join(session.fs, p[1:])).st_mtime_ns for p in _tree_files(session.fs)}
    plan = session.deploy()
    assert plan.copy == [] and plan.remove == [] and plan.manifest is None
    assert {p: os.stat(os.path.join(session.fs, p[1:])).st_mtime_ns for p in _tree_files(session.fs)} == mtimes
    assert "0 to copy" in session.output()

    ticks = os.path.join(session.src, "lib", "ticks.py")
    with open(ticks, "a") as f:
        f.write("\nDEPLOY_TEST_EDIT = 1\n")  # new bytecode, not only a comment
    os.utime(ticks, (time.time() + 2, time.time() + 2))
    plan = session.deploy()
    assert [dst for dst, _ in plan.copy] == ["/lib/ticks.mpy"]
    changed = {p for p, m in mtimes.items() if os.stat(os.path.join(session.fs, p[1:])).st_mtime_ns != m}
    assert changed == {"/lib/ticks.mpy", "/.deploy.json"}
    with open(os.path.join(session.out, "mpy", "lib", "ticks.mpy"), "rb") as f:
        assert _tree_files(session.fs)["/lib/ticks.mpy"] == f.read()

    os.remove(os.path.join(session.src, "lib", "daywindow.py"))  # a module that is gone stays gone on the board
    plan = session.deploy()
    assert plan.copy == [] and plan.remove == ["/lib/daywindow.mpy"]
    assert not os.path.exists(os.path.join(session.fs, "lib", "daywindow.mpy"))
    shutil.copy2(os.path.join(ROOT, "lib", "daywindow.py"), os.path.join(session.src, "lib"))
    shutil.copy2(os.path.join(ROOT, "lib", "ticks.py"), ticks)
    os.utime(ticks, (time.time() + 4, time.time() + 4))
    plan = session.deploy()
    assert sorted(dst for dst, _ in plan.copy) == ["/lib/daywindow.mpy", "/lib/ticks.mpy"]


def test_a_damaged_file_on_the_board_is_found_by_its_hash(session):
    # The board's bytes are hashed, not a record of the last deploy: a copy
    # cut short by a reset is copied again.
    path = os.path.join(session.fs, "lib", "link", "engine.mpy")
    with open(path, "r+b") as f:
        f.truncate(100)
    plan = session.deploy()
    assert [dst for dst, _ in plan.copy] == ["/lib/link/engine.mpy"]


def test_the_deployed_tree_boots_and_serves_live_status(session, tmp_path):
    # The board's tree as it is, run as the ESP32 would (boot.py, then
    # main.py, /lib on the path) with only hw shadowed by the host runtime
    # (tools/hostrt/hw.py as .mpy first on the path, like `make run
    # --deploy mpy`), against the simulator.
    board = str(tmp_path / "board")
    shutil.copytree(session.fs, board)
    hostrt = str(tmp_path / "hostrt")
    r = mpbuild.compile_file(os.path.join(ROOT, "tools", "hostrt", "hw.py"), os.path.join(hostrt, "hw.mpy"))
    assert r.returncode == 0, r.stderr
    runtime = run.Runtime(mpbuild.micropython(bits=32), ":".join([".frozen", hostrt, board, board + "/lib"]), "mpy")
    log = open(str(tmp_path / "fw.log"), "w+b")
    with SimProcess() as sim:
        port = run.free_port()
        fw = run.start_firmware(runtime, board, sim.ready, port, BOOT_HEAP, stdout=log, stderr=log,
                                env={"ANTBRIDGE_BOARDS": board + "/boards"})
        try:
            run.wait_http(port, fw, timeout_s=30)
            deadline = time.monotonic() + 20
            doc = None
            while time.monotonic() < deadline:
                with urllib.request.urlopen("http://127.0.0.1:%d/api/status" % port, timeout=10) as reply:
                    doc = json.load(reply)
                if doc["live"]:
                    break
                time.sleep(0.2)
            log.seek(0)
            assert doc is not None and doc["live"] is True, (doc, log.read().decode()[-2000:])
            assert doc["link"]["state"] == "ok" and doc["status"]["cell_count"] == 16
            with urllib.request.urlopen("http://127.0.0.1:%d/api/health" % port, timeout=10) as reply:
                assert json.load(reply)["task_crashes"] == 0
        finally:
            run.stop(fw)
    log.seek(0)
    text = log.read().decode()
    assert "Traceback" not in text, text
    # Only the board's /lib can have provided the firmware: this interpreter
    # freezes asyncio, not the firmware.
    probe = subprocess.run([runtime.micropython, "-c", "import sys\nsys.path[:] = ['.frozen']\nimport app"],
                           capture_output=True, text=True, env=dict(os.environ, MICROPYPATH=".frozen"))
    assert "ImportError" in probe.stdout + probe.stderr


def test_a_frozen_board_gets_only_its_data_and_loses_the_old_mpy_files(session, tmp_path):
    # The same board after `make deploy IMAGE=...`: the interpreter with the
    # firmware frozen in, on the filesystem the .mpy deploy left.
    s = Session(str(tmp_path))
    shutil.copytree(session.fs, s.fs)
    settings = _tree_files(s.fs)["/settings.json"]
    s.start(frozen=True)
    try:
        with pytest.raises(deploy.DeployError, match="frozen in: it comes first on sys.path"):
            s.deploy()  # .mpy files would never load there
        plan = s.deploy(frozen=True)
    finally:
        s.stop()
    files = _tree_files(s.fs)
    assert set(files) == {"/boards/%s.json" % BOARD, "/settings.json", "/.deploy.json"} | {
        "/" + n for n in PROTECTED_CONTENT}
    assert plan.copy == [] and "/lib/app.mpy" in plan.remove and "/boot.py" in plan.remove
    assert sorted(os.listdir(s.fs + "/lib")) == []  # package folders removed with their modules
    assert json.loads(files["/.deploy.json"])["kind"] == "frozen"
    assert files["/settings.json"] == settings


def test_a_stock_board_refuses_a_data_only_deploy(tmp_path):
    s = Session(str(tmp_path))
    s.start()
    try:
        with pytest.raises(deploy.DeployError, match="no antbridge image frozen in"):
            s.deploy(frozen=True)
    finally:
        s.stop()
    assert _tree_files(s.fs) == {}


# -- the frozen image: esptool (not run against a chip here) --------------------------------------


def _image(path, chip_id):
    header = bytearray(32)
    header[0] = 0xE9  # esp_image_header_t.magic
    header[12] = chip_id & 0xFF
    header[13] = chip_id >> 8
    with open(path, "wb") as f:
        f.write(header)
    return str(path)


@pytest.fixture(scope="module")
def tree():
    return interp.tree(log=lambda m: None)


def test_the_flash_offsets_are_micropythons(tree):
    import firmware

    for name in ("esp32-devkitc", "esp32-c3-supermini", "esp32-s3-devkitc-1"):
        t = deploy.board_target(name)
        info = firmware.check_in_tree(t, tree)
        assert int(deploy.FLASH_OFFSETS[t.chip], 16) == int(info["deploy_options"]["flash_offset"], 16)


@pytest.mark.parametrize("board,chip,offset,chip_id", [
    ("esp32-devkitc", "esp32", "0x1000", 0), ("esp32-c3-supermini", "esp32c3", "0x0", 5),
    ("esp32-s3-devkitc-1", "esp32s3", "0x0", 9)])
def test_the_image_deploy_flashes_at_the_chips_offset(tmp_path, capsys, board, chip, offset, chip_id):
    image = _image(tmp_path / "fw.bin", chip_id)
    assert deploy.main(["--port", "/dev/ttyUSB0", "--board", board, "--image", image, "--dry-run"]) == 0
    out = capsys.readouterr().out
    cmd = [deploy.ESPTOOL, "--chip", chip, "--port", "/dev/ttyUSB0", "--baud", "460800", "write-flash", offset, image]
    assert out.splitlines()[0] == "would run: " + shlex.join(cmd)
    assert "then copy what differs of: /boards/%s.json and /settings.json" % board in out
    # The pinned esptool parses that line: it gets as far as opening the port.
    missing = str(tmp_path / "no-such-port")
    r = subprocess.run(cmd[:4] + [missing] + cmd[5:], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "no-such-port" in r.stdout + r.stderr
    assert "Usage:" not in r.stdout + r.stderr and "No such command" not in r.stdout + r.stderr


def test_an_image_for_another_chip_or_no_image_is_refused(tmp_path, capsys):
    c3 = _image(tmp_path / "c3.bin", 5)
    assert deploy.main(["--port", "/dev/ttyUSB0", "--board", "esp32-devkitc", "--image", c3, "--dry-run"]) == 1
    assert "built for esp32c3 (chip id 5), the board is an esp32" in capsys.readouterr().err
    text = tmp_path / "notes.txt"
    text.write_text("not firmware")
    assert deploy.main(["--port", "/dev/ttyUSB0", "--image", str(text), "--dry-run"]) == 1
    assert "is not an ESP32 firmware image" in capsys.readouterr().err


def test_make_deploy_needs_a_serial_port_and_passes_the_image(tmp_path):
    env = dict(os.environ)
    env.pop("PORT", None)
    r = subprocess.run(["make", "-s", "deploy"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode != 0
    assert "deploy: needs the board's serial port: make deploy PORT=/dev/ttyUSB0" in r.stderr
    image = _image(tmp_path / "s3.bin", 9)
    r = subprocess.run(["make", "-s", "deploy", "PORT=/dev/ttyACM0", "BOARD=esp32-s3-devkitc-1", "IMAGE=" + image,
                        "DRY_RUN=1"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "--chip esp32s3 --port /dev/ttyACM0 --baud 460800 write-flash 0x0 " + image in r.stdout
