#!/usr/bin/env python3
"""The ESP32-like MicroPython interpreters the tests and `make run` use:
the v1.28.0 unix port built with the variant in variant/esp32like (the ESP32
port's object model, single-precision floats, NORMAL error reporting).

  flavour              word   frozen into the binary
  esp32like            32-bit asyncio                 (stage 2: lib/ as .mpy)
  esp32like-frozen     32-bit asyncio + firmware/manifest.py (e2e, make run)
  esp32like64          64-bit asyncio                 (comparison only)
  esp32like64-frozen   64-bit asyncio + firmware/manifest.py (comparison only)

  path = binary("esp32like-frozen")   # builds it if missing or out of date
  label(path)                          # "esp32like 32-bit v1.28.0, firmware frozen"

Builds land in build/mp/<flavour>/micropython. MicroPython's own make is
incremental (objects in build/mp/obj/<flavour>/): a build is redone when
the sources, the variant, the make arguments or, for the frozen flavours,
any frozen file changed. Concurrent callers (several pytest processes,
`make run`) share one file lock; a finished binary is moved into place
atomically, so a reader sees either the old one or the new one.

Command line: tools/micropython_builds/interp.py [FLAVOUR...] (default: the
two 32-bit ones) builds and prints each binary with its label.
"""
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import sources  # noqa: E402

VARIANT_DIR = os.path.join(HERE, "variant", "esp32like")
UNIX_FROZEN_MANIFEST = os.path.join(HERE, "unix_frozen_manifest.py")
FIRMWARE_MANIFEST = os.path.join(ROOT, "firmware", "manifest.py")
MP_BUILD = os.path.join(ROOT, "build", "mp")
TREE = os.path.join(MP_BUILD, "src", "micropython-" + sources.MICROPYTHON_VERSION)
OBJ = os.path.join(MP_BUILD, "obj")
# Submodules the tree does not have, and modules the firmware does not use.
DISABLED = ("MICROPY_PY_BTREE=0", "MICROPY_PY_FFI=0", "MICROPY_PY_SSL=0")


class BuildError(Exception):
    pass


class Flavour:
    def __init__(self, name, bits, frozen):
        self.name = name
        self.bits = bits
        self.frozen = frozen


FLAVOURS = {f.name: f for f in (
    Flavour("esp32like", 32, False),
    Flavour("esp32like-frozen", 32, True),
    Flavour("esp32like64", 64, False),
    Flavour("esp32like64-frozen", 64, True),
)}
DEFAULT_FLAVOURS = ("esp32like", "esp32like-frozen")


def flavour_name(bits=32, frozen=False):
    return "esp32like" + ("" if bits == 32 else str(bits)) + ("-frozen" if frozen else "")


def _log(message):
    print(message, file=sys.stderr, flush=True)


def make_args(flavour, tree=TREE, obj_dir=None):
    """The make command line of a flavour (without -j)."""
    obj_dir = obj_dir or os.path.join(OBJ, flavour.name)
    args = ["make", "-C", os.path.join(tree, "ports", "unix"), "VARIANT_DIR=" + VARIANT_DIR,
            "BUILD=" + obj_dir] + list(DISABLED)
    if flavour.bits == 32:
        args += ["CFLAGS_EXTRA=-m32", "LDFLAGS_EXTRA=-m32"]
    if flavour.frozen:
        args.append("FROZEN_MANIFEST=" + UNIX_FROZEN_MANIFEST)
    return args


# -- what a manifest freezes ---------------------------------------------------------------

_LIST_MANIFEST = r"""
import json, sys
sys.path.insert(0, sys.argv[1] + "/tools")
import manifestfile
tree, port, manifest = sys.argv[1], sys.argv[2], sys.argv[3]
m = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, {
    "MPY_DIR": tree, "MPY_LIB_DIR": tree + "/lib/micropython-lib",
    "PORT_DIR": tree + "/ports/" + port, "BOARD_DIR": None})
m.execute(manifest)
print(json.dumps([[f.target_path, f.full_path] for f in m.files()]))
"""


def frozen_files(manifest, tree=TREE, port="unix"):
    """[(module path in the image, source file)] a manifest freezes, as
    MicroPython's own tools/manifestfile.py resolves it for that port."""
    r = subprocess.run([sys.executable, "-c", _LIST_MANIFEST, tree, port, manifest],
                       capture_output=True, text=True, timeout=120)
    if r.returncode:
        raise BuildError("manifest %s: %s" % (manifest, (r.stderr or r.stdout).strip()))
    return [tuple(pair) for pair in json.loads(r.stdout)]


# -- build keys ------------------------------------------------------------------------------


def _hash_file(h, path):
    h.update(path.encode() + b"\0")
    with open(path, "rb") as f:
        h.update(f.read())
    h.update(b"\0")


def build_key(flavour, tree=TREE, manifest=UNIX_FROZEN_MANIFEST):
    """Everything a build depends on beyond MicroPython's own sources: the
    make line, the variant, and for a frozen flavour the manifests and the
    content of every file they freeze."""
    h = hashlib.sha256()
    h.update(sources.identity().encode())
    h.update(" ".join(make_args(flavour, tree)).encode())
    for name in sorted(os.listdir(VARIANT_DIR)):
        _hash_file(h, os.path.join(VARIANT_DIR, name))
    if flavour.frozen:
        _hash_file(h, manifest)
        _hash_file(h, FIRMWARE_MANIFEST)
        for target, path in frozen_files(manifest, tree):
            h.update(target.encode() + b"\0")
            _hash_file(h, path)
    return h.hexdigest()


# -- build -----------------------------------------------------------------------------------


class _Lock:
    """An exclusive lock on build/mp/.lock (released when the process ends)."""

    def __init__(self, log):
        self.log = log

    def __enter__(self):
        os.makedirs(MP_BUILD, exist_ok=True)
        self.f = open(os.path.join(MP_BUILD, ".lock"), "w")
        try:
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.log("mp: waiting for another build of the interpreter")
            fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def _read_meta(out_dir):
    try:
        with open(os.path.join(out_dir, "build.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _write_atomically(path, data, mode="w"):
    tmp = "%s.tmp%d" % (path, os.getpid())
    with open(tmp, mode) as f:
        f.write(data)
    os.replace(tmp, path)


def _up_to_date(flavour, out_dir):
    exe = os.path.join(out_dir, "micropython")
    if not os.path.isfile(exe) or not os.path.isfile(os.path.join(TREE, sources.STAMP)):
        return False
    try:
        return _read_meta(out_dir).get("key") == build_key(flavour)
    except (OSError, BuildError):
        return False


# Variables of a calling make (`make test X=1` passes them down in MAKEFLAGS)
# or of the environment that MicroPython's makefiles would pick up.
_FOREIGN = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "BOARD", "BOARD_VARIANT", "BUILD", "VARIANT",
            "VARIANT_DIR", "FROZEN_MANIFEST", "PROG", "DEBUG", "COPT", "CFLAGS", "LDFLAGS", "CFLAGS_EXTRA",
            "LDFLAGS_EXTRA", "CROSS_COMPILE", "MPY_LIB_DIR", "USER_C_MODULES")


def clean_env():
    """The environment for MicroPython's make."""
    env = dict(os.environ)
    for name in _FOREIGN:
        env.pop(name, None)
    return env


def _make(args, log_path, jobs):
    with open(log_path, "a") as log:
        log.write("$ %s\n" % " ".join(args))
        log.flush()
        return subprocess.run(args + ["-j%d" % jobs], stdout=log, stderr=subprocess.STDOUT, env=clean_env()).returncode


def _tail(path, lines=25):
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


def _build(flavour, out_dir, log):
    jobs = os.cpu_count() or 2
    obj_dir = os.path.join(OBJ, flavour.name)
    log_path = os.path.join(OBJ, flavour.name + ".log")
    os.makedirs(OBJ, exist_ok=True)
    with open(log_path, "w"):
        pass
    started = time.monotonic()
    log("mp: building %s (MicroPython %s unix port, %d-bit%s) ..." % (
        flavour.name, sources.MICROPYTHON_VERSION, flavour.bits, ", firmware frozen" if flavour.frozen else ""))
    _mpy_cross(log_path, jobs)
    args = make_args(flavour)
    if flavour.frozen:
        # makemanifest.py recompiles a frozen .py only when it is newer than
        # its cached .mpy; a changed file with an older mtime (a restored
        # backup, `cp -p`) would be missed. The key saw a change: recompile
        # them all (about 2 s).
        shutil.rmtree(os.path.join(obj_dir, "frozen_mpy"), ignore_errors=True)
    if _make(args, log_path, jobs):
        # An interrupted earlier build can leave generated files inconsistent:
        # one clean retry before giving up.
        log("mp: build failed; retrying %s from clean" % flavour.name)
        shutil.rmtree(obj_dir, ignore_errors=True)
        if _make(args, log_path, jobs):
            raise BuildError("building %s failed (log %s):\n%s" % (flavour.name, log_path, _tail(log_path)))
    os.makedirs(out_dir, exist_ok=True)
    exe = os.path.join(out_dir, "micropython")
    tmp = "%s.tmp%d" % (exe, os.getpid())
    shutil.copy2(os.path.join(obj_dir, "micropython"), tmp)
    os.replace(tmp, exe)
    seconds = time.monotonic() - started
    meta = {"flavour": flavour.name, "key": build_key(flavour), "label": label(exe), "seconds": round(seconds, 1),
            "sources": sources.identity().splitlines(), "make": args}
    _write_atomically(os.path.join(out_dir, "build.json"), json.dumps(meta, indent=1) + "\n")
    log("mp: %s built in %.0f s: %s" % (flavour.name, seconds, exe))


def _mpy_cross(log_path, jobs):
    """mpy-cross from the same tree: it compiles what gets frozen."""
    if _make(["make", "-C", os.path.join(TREE, "mpy-cross")], log_path, jobs):
        raise BuildError("building mpy-cross failed (log %s):\n%s" % (log_path, _tail(log_path)))


def tree(log=_log):
    """The verified source tree with its mpy-cross built (for the ESP32
    image); returns its path."""
    with _Lock(log):
        if sources.prepare(TREE, ROOT, log=log):
            shutil.rmtree(OBJ, ignore_errors=True)
        os.makedirs(OBJ, exist_ok=True)
        _mpy_cross(os.path.join(OBJ, "mpy-cross.log"), os.cpu_count() or 2)
    return TREE


def binary(flavour="esp32like", log=_log):
    """Path of the flavour's interpreter, built first if missing or out of
    date. Raises BuildError (or sources.SourceError) with the reason."""
    f = FLAVOURS[flavour]
    out_dir = os.path.join(MP_BUILD, f.name)
    if _up_to_date(f, out_dir):
        return os.path.join(out_dir, "micropython")
    with _Lock(log):
        if sources.prepare(TREE, ROOT, log=log):
            shutil.rmtree(OBJ, ignore_errors=True)  # objects of another tree
        if not _up_to_date(f, out_dir):
            _build(f, out_dir, log)
    return os.path.join(out_dir, "micropython")


# -- what a binary is ---------------------------------------------------------------------------

_DESCRIBE = r"""
import sys, struct, json
v = sys.implementation.version
d = {"build": getattr(sys.implementation, "_build", ""), "maxsize": sys.maxsize,
     "pointer_bytes": struct.calcsize("P"), "version": "%d.%d.%d" % (v[0], v[1], v[2]),
     "float_repr": repr(1.1 + 2.2)}
try:  # run with only ".frozen" on the path: importable = frozen in
    import ticks
    d["frozen_firmware"] = True
except ImportError:
    d["frozen_firmware"] = False
print(json.dumps(d))
"""
_described = {}


def describe(exe):
    """Facts the binary reports about itself: build (variant) name, word
    size, version, float precision, whether the firmware is frozen in."""
    st = os.stat(exe)
    cache_key = (exe, st.st_mtime_ns, st.st_size)
    if cache_key not in _described:
        env = dict(os.environ, MICROPYPATH=".frozen")
        r = subprocess.run([exe, "-c", _DESCRIBE], capture_output=True, text=True, timeout=30, env=env, cwd="/")
        if r.returncode:
            raise BuildError("%s does not run: %s" % (exe, r.stderr.strip()))
        d = json.loads(r.stdout)
        d["bits"] = 32 if d["maxsize"] == 2**31 - 1 else 64 if d["maxsize"] == 2**63 - 1 else 0
        _described[cache_key] = d
    return _described[cache_key]


def label(exe):
    """"esp32like 32-bit v1.28.0" (+ ", firmware frozen"), from the binary."""
    d = describe(exe)
    return "%s %d-bit v%s%s" % (d["build"], d["bits"], d["version"], ", firmware frozen" if d["frozen_firmware"] else "")


def main(argv):
    names = argv or list(DEFAULT_FLAVOURS)
    for name in names:
        if name not in FLAVOURS:
            print("interp: unknown flavour %s (one of %s)" % (name, ", ".join(FLAVOURS)), file=sys.stderr)
            return 2
    try:
        for name in names:
            exe = binary(name)
            print("%s: %s (%s)" % (name, os.path.relpath(exe, ROOT), label(exe)))
    except (BuildError, sources.SourceError) as e:
        print("interp:", e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
