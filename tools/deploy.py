#!/usr/bin/env python3
"""`make deploy PORT=/dev/ttyUSB0 BOARD=esp32-devkitc [IMAGE=firmware.bin]`:
put the firmware on a board over its USB serial port with mpremote.

Without --image (a board running stock MicroPython, PSRAM boards): lib/ and
firmware/ are compiled to .mpy (mpy-cross -march=xtensawin, as the tests
compile them) and copied with the microdot modules the firmware imports:

    /boot.py, /main.py          source: MicroPython runs these two by name
    /lib/<module>.mpy           lib/ and firmware/ (one folder: the port's
    /lib/ant/..., /lib/link/...   sys.path is ['', '.frozen', '/lib'])
    /lib/microdot/__init__.mpy, /lib/microdot/microdot.mpy   (pinned microdot)
    /boards/<board>.json        the pin map firmware/hw.py reads
    /settings.json              only when the board has none: a fresh API
                                token (printed once) and the board name
    /.deploy.json               what this tool put there (for removing stale
                                modules later; never trusted for hashes)

With --image FILE (boards without PSRAM: the image of `make firmware`, the
firmware frozen in): esptool writes FILE at the chip's offset (ESP32 0x1000,
C3/S3 0x0), then only the board file and (if missing) settings.json are
copied, and code files an earlier .mpy deployment left are removed.

A second deploy copies only what differs: one script on the board hashes the
files in question (sha256, one round trip) and only files whose hash differs
are copied. settings.json, state.json, state.json.bad and boots.json on the
board are never written or removed (settings.json only created when absent).
At the end the board is reset (machine.reset()) so the firmware starts.

--resume and --no-reset are for the fake device (tools/fakedevice.py: the
unix port's REPL exits on a soft reset and cannot reset), --dry-run prints
the esptool and mpremote plan without touching a board.
"""
import argparse
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "host_tests"))
sys.path.insert(0, os.path.join(ROOT, "tools", "micropython_builds"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import firmware as fwbuild  # noqa: E402  (tools/micropython_builds/firmware.py: board -> chip, MicroPython board)
import mpbuild  # noqa: E402
import run  # noqa: E402  (microdot_source, MICRODOT_MODULES, _remove_orphans)

BIN = os.path.join(ROOT, ".venv", "bin")
MPREMOTE = os.path.join(BIN, "mpremote")
ESPTOOL = os.path.join(BIN, "esptool")
OUT = os.path.join(ROOT, "build", "deploy")
MANIFEST = "/.deploy.json"
MANIFEST_FORMAT = 1
# The board's own data: never written or removed by a deploy (settings.json
# is created when absent, nothing more). The .tmp files are statestore's
# atomic-write temporaries.
PROTECTED = ("/settings.json", "/state.json", "/state.json.bad", "/boots.json", "/settings.json.tmp",
             "/state.json.tmp", "/boots.json.tmp")
# Where the frozen image goes (MicroPython v1.28.0 ports/esp32/boards/*/board.json
# "flash_offset"; checked against the source tree by the tests).
FLASH_OFFSETS = {"esp32": "0x1000", "esp32c3": "0x0", "esp32s3": "0x0"}
# esp_image_header_t.chip_id (ESP-IDF esp_app_format.h, esp_chip_id_t): a
# C3 image written to an ESP32 would not boot.
IMAGE_CHIP_IDS = {"esp32": 0x0000, "esp32c3": 0x0005, "esp32s3": 0x0009}
IMAGE_MAGIC = 0xE9
FLASH_BAUD = "460800"
# A firmware that ran before the deploy may have started the hardware
# watchdog (30 s, firmware/supervisor.py); it survives the soft reset that
# stops the firmware, and a first deploy takes longer than that. The first
# script stretches it for the session; the reset at the end ends it.
SESSION_WDT_MS = 600000
# A module every antbridge image freezes: importable with sys.path =
# ['.frozen'] only when the board runs the frozen image.
FROZEN_PROBE = "catalog"
SCAN_TAG = "DEPLOYSCAN "


class DeployError(Exception):
    pass


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(65536), b""):
            h.update(block)
    return h.hexdigest()


# -- what goes on the board ----------------------------------------------------------------


def _device_modules(top, src_root=ROOT):
    """(module path without .py, source) of every module under top that
    goes to /lib: not firmware/manifest.py (the freeze list), not boot.py or
    main.py (they stay source at /)."""
    base = os.path.join(src_root, top)
    out = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            src = os.path.join(dirpath, name)
            rel = os.path.relpath(src, base)[:-3].replace(os.sep, "/")
            if top == "firmware" and rel in ("manifest", "boot", "main"):
                continue
            out.append((rel, src))
    return out


def _compile(src, dst, failures):
    """mpy-cross -march=xtensawin (host_tests/mpbuild.py), again only when
    the source is newer than the .mpy."""
    if os.path.exists(dst) and os.path.getmtime(dst) >= os.path.getmtime(src):
        return
    result = mpbuild.compile_file(src, dst)
    if result.returncode:
        failures.append((src, result.stderr.strip()))


def code_files(out=OUT, src_root=ROOT):
    """{device path: local file} of the .mpy deployment of the tree at
    src_root, compiled into out/ (an .mpy whose source is gone is deleted)."""
    files = {}
    owner = {}
    failures = []
    for top in ("lib", "firmware"):
        mpy_dir = os.path.join(out, "mpy", top)
        if os.path.isdir(mpy_dir):
            run._remove_orphans(os.path.join(src_root, top), mpy_dir)
        for rel, src in _device_modules(top, src_root):
            name = rel.split("/")[0]
            if owner.setdefault(name, top) != top:  # one /lib: lib/x and firmware/x would shadow each other
                raise DeployError("module %s is in both lib/ and firmware/: they share /lib on the board" % name)
            dst = os.path.join(mpy_dir, rel + ".mpy")
            _compile(src, dst, failures)
            files["/lib/" + rel + ".mpy"] = dst
    microdot = run.microdot_source()
    for name in run.MICRODOT_MODULES:
        dst = os.path.join(out, "mpy", "microdot", name + ".mpy")
        _compile(os.path.join(microdot, name + ".py"), dst, failures)
        files["/lib/microdot/" + name + ".mpy"] = dst
    if failures:
        raise DeployError("mpy-cross failed:\n" + "\n".join("%s: %s" % f for f in failures))
    for name in ("boot", "main"):
        files["/" + name + ".py"] = os.path.join(src_root, "firmware", name + ".py")
    return files


def module_names(src_root=ROOT):
    """The top-level names the firmware imports from /lib or .frozen: a
    file of that name at the board's root would shadow it."""
    names = {"microdot"}
    for top in ("lib", "firmware"):
        names.update(rel.split("/")[0] for rel, _ in _device_modules(top, src_root))
    return names


def mpy_version(path):
    """The .mpy format version in a compiled file's header ('M', version, ...)."""
    with open(path, "rb") as f:
        head = f.read(2)
    if len(head) != 2 or head[0] != ord("M"):
        raise DeployError("%s is not an .mpy file" % path)
    return head[1]


def board_target(board, src_root=ROOT):
    """The board file, validated (lib/board.py), with its chip and
    MicroPython board; DeployError naming the problem."""
    try:
        return fwbuild.target(board, os.path.join(src_root, "boards"))
    except fwbuild.FirmwareError as e:
        raise DeployError(str(e))


def board_files(board, src_root=ROOT):
    return {"/boards/%s.json" % board: os.path.join(src_root, "boards", board + ".json")}


def starter_settings(board):
    """settings.json for a board that has none: a fresh API token (32 hex
    digits) and the board name; everything else is the firmware's default."""
    return {"api_token": secrets.token_hex(16), "board": board}


# -- esptool -----------------------------------------------------------------------------------


def check_image(path, chip):
    """The image starts with an ESP image header for this chip."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise DeployError("image %s: %s" % (path, e.strerror or e))
    if len(head) < 16 or head[0] != IMAGE_MAGIC:
        raise DeployError("image %s is not an ESP32 firmware image (no 0x%02X header)" % (path, IMAGE_MAGIC))
    chip_id = head[12] | head[13] << 8
    if chip_id != IMAGE_CHIP_IDS[chip]:
        names = {v: k for k, v in IMAGE_CHIP_IDS.items()}
        raise DeployError("image %s is built for %s (chip id %d), the board is an %s" % (
            path, names.get(chip_id, "another chip"), chip_id, chip))


def flash_command(chip, port, image):
    """esptool 5 writing the frozen image at the chip's offset; it resets
    the chip when done (--after hard-reset, the default)."""
    return [ESPTOOL, "--chip", chip, "--port", port, "--baud", FLASH_BAUD, "write-flash", FLASH_OFFSETS[chip],
            image]


# -- the board's side (MicroPython, sent with mpremote exec) ------------------------------------

_SCAN = """\
import os, sys, json, hashlib, binascii
try:
    import machine
    machine.WDT(timeout=%(wdt)d)
except Exception:
    pass
_b = bytearray(512)
def _h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    d = hashlib.sha256()
    m = memoryview(_b)
    with f:
        while True:
            n = f.readinto(_b)
            if not n:
                break
            d.update(m[:n])
    return binascii.hexlify(d.digest()).decode()
def _json(p):
    try:
        with open(p) as f:
            return json.load(f)
    except Exception:
        return None
_r = {'manifest': _json(%(manifest)r), 'exists': {}, 'hashes': {}}
_s = _json('/settings.json')
_r['settings_board'] = _s.get('board') if isinstance(_s, dict) else None
for _p in %(protected)r:
    try:
        os.stat(_p)
        _r['exists'][_p] = True
    except OSError:
        _r['exists'][_p] = False
_paths = %(paths)r
_m = _r['manifest']
if isinstance(_m, dict) and isinstance(_m.get('files'), dict):
    _paths = _paths + [p for p in _m['files'] if p not in _paths]
for _p in _paths:
    _r['hashes'][_p] = _h(_p)
_r['root'] = os.listdir('/')
_keep = sys.path[:]
sys.path[:] = ['.frozen']
sys.modules.pop(%(probe)r, None)
try:
    __import__(%(probe)r)
    _r['frozen'] = True
except ImportError:
    _r['frozen'] = False
sys.modules.pop(%(probe)r, None)
sys.path[:] = _keep
_r['mpy'] = getattr(sys.implementation, '_mpy', 0) & 0xff
_r['version'] = '.'.join(str(v) for v in sys.implementation.version[:3])
_r['machine'] = getattr(sys.implementation, '_machine', sys.platform)
# streamed: with every file's hash the document is over 10 KB, too big to
# make whole in a board's fragmented heap
sys.stdout.write(%(tag)r)
json.dump(_r, sys.stdout)
sys.stdout.write('\\n')
"""

_PREPARE = """\
import os
for _d in %(dirs)r:
    try:
        os.mkdir(_d)
    except OSError:
        pass
for _p in %(remove)r:
    os.remove(_p)
for _d in %(rmdirs)r:
    try:
        os.rmdir(_d)
    except OSError:
        pass
with open(%(manifest)r, 'w') as _f:
    _f.write(%(pending)r)
"""


class Board:
    """mpremote against one serial port. The first command soft-resets the
    board (that stops a running firmware; the unix port exits instead, so
    `resume` there), the others resume the same session."""

    def __init__(self, port, resume=False, echo=print):
        self.port = port
        self.resume = resume
        self.echo = echo
        self.calls = []  # every mpremote argument list run (for the report and tests)
        self._started = False

    def command(self, args):
        cmd = [MPREMOTE, "connect", self.port]
        if self.resume or self._started:
            cmd.append("resume")
        return cmd + list(args)

    def run(self, args, timeout_s=600):
        cmd = self.command(args)
        self.calls.append(cmd)
        self._started = True
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise DeployError("mpremote on %s did not finish within %d s" % (self.port, timeout_s))
        except OSError as e:
            raise DeployError("cannot run %s: %s (make setup installs it)" % (MPREMOTE, e.strerror or e))
        if r.returncode:
            text = (r.stdout + r.stderr).strip()
            raise DeployError("mpremote on %s failed (exit %d): %s" % (self.port, r.returncode, text[-1500:]))
        return r.stdout

    def scan(self, paths):
        """What the board has: sha256 of each path (None: absent), its
        manifest, which protected files exist, the board its settings name,
        whether an antbridge image is frozen in, its .mpy version."""
        code = _SCAN % {"wdt": SESSION_WDT_MS, "manifest": MANIFEST, "protected": list(PROTECTED),
                        "paths": sorted(paths), "probe": FROZEN_PROBE, "tag": SCAN_TAG}
        out = self.run(["exec", code])
        for line in out.splitlines():
            if line.startswith(SCAN_TAG):
                return json.loads(line[len(SCAN_TAG):])
        raise DeployError("the board did not answer the scan on %s: %s" % (self.port, out.strip()[-800:]))

    def apply(self, dirs, remove, rmdirs, pending, copies, reset):
        args = ["exec", _PREPARE % {"dirs": dirs, "remove": remove, "rmdirs": rmdirs, "manifest": MANIFEST,
                                    "pending": pending}]
        for dst, src in copies:
            args += ["+", "fs", "cp", "-f", src, ":" + dst]
        if reset:
            args += ["+", "reset"]
        return self.run(args)

    def reset(self):
        return self.run(["reset"])


# -- planning ------------------------------------------------------------------------------------


class Plan:
    def __init__(self):
        self.copy = []  # (device path, local path)
        self.unchanged = []  # device paths
        self.remove = []  # device paths
        self.dirs = []
        self.rmdirs = []
        self.settings_created = None  # the starter settings dict when the board had none
        self.manifest = None  # the new manifest (None: the board's is current)
        self.pending = None  # written first: old and new files, so an interrupted deploy still knows both


def _parents(path):
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def plan(files, scan, kind, board, settings_file=None):
    """What to do, from the files wanted ({device path: local file}) and
    the board's scan. `settings_file` is copied to /settings.json only when
    the board has none."""
    p = Plan()
    hashes = scan["hashes"]
    wanted = {}
    for dst in sorted(files):
        if dst in PROTECTED:
            raise DeployError("refusing to overwrite %s on the board" % dst)
        digest = sha256_file(files[dst])
        wanted[dst] = digest
        if hashes.get(dst) == digest:
            p.unchanged.append(dst)
        else:
            p.copy.append((dst, files[dst]))
    if settings_file is not None and not scan["exists"].get("/settings.json"):
        p.copy.append(("/settings.json", settings_file))
        p.settings_created = True
    old = scan.get("manifest")
    old_files = old.get("files") if isinstance(old, dict) and isinstance(old.get("files"), dict) else {}
    keep_board = scan.get("settings_board")
    for path in sorted(old_files):
        if path in wanted or path in PROTECTED or path == MANIFEST:
            continue
        if keep_board and path == "/boards/%s.json" % keep_board:
            continue  # the board file settings.json names: the firmware needs it
        if hashes.get(path) is not None:
            p.remove.append(path)
    dirs = set()
    for dst, _ in p.copy:
        dirs.update(_parents(dst))
    p.dirs = sorted(dirs, key=lambda d: (d.count("/"), d))
    gone = set()
    for path in p.remove:
        gone.update(_parents(path))
    p.rmdirs = sorted(gone - dirs - {"/lib", "/boards"}, key=lambda d: (-d.count("/"), d))
    manifest = {"format": MANIFEST_FORMAT, "kind": kind, "board": board, "files": wanted}
    if manifest != old or p.copy or p.remove:
        p.manifest = manifest
        both = dict(old_files)
        both.update(wanted)
        p.pending = dict(manifest, files=both, pending=True)
    return p


def _kb(paths):
    return sum(os.path.getsize(src) for _, src in paths) / 1024.0


# -- the deploy ----------------------------------------------------------------------------------


def deploy(port, board, image=None, frozen=False, resume=False, reset=True, dry_run=False, out=OUT, echo=print,
           src_root=ROOT):
    """Deploy to the board on `port`; returns the Plan (None for a dry run).
    `src_root`: the tree whose lib/, firmware/ and boards/ are deployed."""
    t = board_target(board, src_root)
    kind = "frozen" if image or frozen else "mpy"
    if image:
        check_image(image, t.chip)
    if kind == "mpy":
        files = code_files(out, src_root)
        files.update(board_files(board, src_root))
        if t.psram == "none":
            echo("deploy: NOTE %s has no PSRAM: the firmware as .mpy files needs about 200 KB of heap, more than "
                 "such a board keeps free with Wi-Fi; flash the frozen image instead (make firmware, then "
                 "make deploy IMAGE=...)" % board)
    else:
        files = board_files(board, src_root)
    if dry_run:
        if image:
            echo("would run: " + shlex.join(flash_command(t.chip, port, image)))
        echo("would run: " + shlex.join(Board(port, resume).command(["exec", "<scan: sha256 of %d files>" % len(files)])))
        echo("then copy what differs of: " + " ".join(sorted(files)) + " and /settings.json if the board has none")
        echo("then: " + ("none (--no-reset)" if not reset else shlex.join(Board(port, True).command(["reset"]))))
        return None
    if image:
        cmd = flash_command(t.chip, port, image)
        echo("deploy: " + shlex.join(cmd))
        try:
            r = subprocess.run(cmd)
        except OSError as e:
            raise DeployError("cannot run %s: %s (make setup installs esptool)" % (ESPTOOL, e.strerror or e))
        if r.returncode:
            raise DeployError("esptool failed (exit %d): nothing was copied" % r.returncode)
    dev = Board(port, resume, echo)
    scan = dev.scan(files)
    echo("deploy: %s: MicroPython %s (%s), antbridge %s" % (
        port, scan["version"], scan["machine"], "frozen in" if scan["frozen"] else "not frozen in"))
    if kind == "mpy":
        if scan["frozen"]:
            raise DeployError("the board runs an antbridge image with the firmware frozen in: it comes first on "
                              "sys.path, so .mpy files in /lib would never load. Deploy it with IMAGE= (or "
                              "flash stock MicroPython first)")
        wanted = mpy_version(next(src for dst, src in sorted(files.items()) if dst.endswith(".mpy")))
        if scan["mpy"] != wanted:
            raise DeployError("the board's MicroPython %s loads .mpy version %s, these files are version %d "
                              "(MicroPython 1.23 or later)" % (scan["version"], scan["mpy"], wanted))
    elif not scan["frozen"]:
        raise DeployError("the board has no antbridge image frozen in (no module %s in .frozen)%s" % (
            FROZEN_PROBE, ": did esptool write it?" if image else ": flash it with IMAGE=, or deploy .mpy files"))
    if scan.get("settings_board") and scan["settings_board"] != board:
        echo("deploy: NOTE the board's settings.json names board %s, not %s: the firmware uses %s" % (
            scan["settings_board"], board, scan["settings_board"]))
    modules = module_names(src_root)
    for name in scan.get("root", []):
        stem = name.rsplit(".", 1)[0]
        if name.endswith((".py", ".mpy")) and stem in modules:
            echo("deploy: NOTE /%s at the board's root shadows the firmware's module %s ('' comes first on "
                 "sys.path): remove it (mpremote connect %s fs rm :/%s)" % (name, stem, port, name))
    tmp = tempfile.mkdtemp(prefix="antbridge-deploy-")
    try:
        settings = starter_settings(board)
        settings_file = os.path.join(tmp, "settings.json")
        with open(settings_file, "w") as f:
            json.dump(settings, f, indent=1)
        p = plan(files, scan, kind, board, settings_file)
        if p.settings_created:
            p.settings_created = settings
        echo("deploy: %d to copy (%.1f KB), %d unchanged, %d to remove%s" % (
            len(p.copy), _kb(p.copy), len(p.unchanged), len(p.remove),
            "; settings.json: created" if p.settings_created else "; settings.json: kept"))
        if p.manifest is not None:
            manifest_file = os.path.join(tmp, "deploy.json")
            with open(manifest_file, "w") as f:
                json.dump(p.manifest, f, sort_keys=True)
            copies = p.copy + [(MANIFEST, manifest_file)]
            try:
                out_text = dev.apply(p.dirs, p.remove, p.rmdirs, json.dumps(p.pending, sort_keys=True), copies,
                                     reset)
            except DeployError:
                if p.settings_created:
                    echo("deploy: the new /settings.json may be on the board already: read its token with "
                         "mpremote connect %s fs cat :/settings.json" % port)
                raise
            for line in out_text.splitlines():
                if line.startswith("cp "):
                    echo("  " + line)
        elif reset:
            dev.reset()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the token stays on the board only
    if p.settings_created:
        echo("deploy: API token (shown this once; it is in the board's /settings.json): %s"
             % p.settings_created["api_token"])
    echo("deploy: done%s" % ("; the board is resetting" if reset else " (no reset: --no-reset)"))
    return p


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", default="", help="the board's serial port, e.g. /dev/ttyUSB0 (make deploy PORT=...)")
    p.add_argument("--board", default="esp32-devkitc", help="a board file in boards/ (default esp32-devkitc)")
    p.add_argument("--image", help="flash this frozen firmware image with esptool first (make firmware's .bin)")
    p.add_argument("--frozen", action="store_true",
                   help="the board already runs the frozen image: copy only its data files (no esptool)")
    p.add_argument("--resume", action="store_true",
                   help="never soft-reset the board (mpremote resume): for the fake device, whose REPL exits on one")
    p.add_argument("--no-reset", action="store_true", help="do not reset the board at the end (the fake device "
                   "cannot); on a board the deploy leaves its watchdog stretched to 10 min, so reset it yourself")
    p.add_argument("--dry-run", action="store_true", help="print the plan (esptool and mpremote) and do nothing")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    port = args.port.strip()
    if not port or re.match(r"^\d+$", port):
        print("deploy: needs the board's serial port: make deploy PORT=/dev/ttyUSB0 BOARD=%s" % args.board,
              file=sys.stderr)
        return 2
    try:
        deploy(port, args.board, image=args.image, frozen=args.frozen, resume=args.resume,
               reset=not args.no_reset, dry_run=args.dry_run, echo=_echo)
        return 0
    except DeployError as e:
        print("deploy: %s" % e, file=sys.stderr)
        return 1


def _echo(text):
    print(text, flush=True)


if __name__ == "__main__":
    sys.exit(main())
