# The MicroPython side of the tests and tools: the ESP32-like interpreter
# (built from source on first use, tools/micropython_builds/interp.py) and
# compiling device code with mpy-cross.
#
#   micropython()                 the 32-bit esp32like interpreter (lib/ as .mpy)
#   micropython(frozen=True)      the same with the firmware frozen in (e2e, make run)
#   micropython(bits=64)          the 64-bit build of the same variant (comparison)
#   interpreter_label(path)       "esp32like 32-bit v1.28.0", read from the binary
#
# ANTBRIDGE_MP_BITS=64 makes 64 the default word size (to compare the whole
# suite on the 64-bit build).
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".venv", "bin")
MPY_CROSS = os.path.join(BIN, "mpy-cross")
sys.path.insert(0, os.path.join(ROOT, "tools", "micropython_builds"))
import interp  # noqa: E402

BITS = int(os.environ.get("ANTBRIDGE_MP_BITS") or 32)
if BITS not in (32, 64):
    raise ValueError("ANTBRIDGE_MP_BITS must be 32 or 64, not %d" % BITS)


USED = set()  # interpreters handed out in this process (conftest lists them after the run)


def micropython(frozen=False, bits=None):
    """Path of the ESP32-like interpreter, built first if missing or out of
    date (interp.BuildError with the reason if that fails)."""
    exe = interp.binary(interp.flavour_name(bits or BITS, frozen))
    USED.add(exe)
    return exe


def interpreter_label(exe):
    return interp.label(exe)


def device_sources(*tops):
    """Every .py file under the given top-level folders, sorted."""
    out = []
    for top in tops:
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, top)):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            out.extend(os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".py"))
    return out


def compile_file(src, dst, march="xtensawin"):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    rel = os.path.relpath(src, ROOT)
    result = subprocess.run(
        [MPY_CROSS, "-march=" + march, "-s", os.path.basename(rel), "-o", dst, src],
        capture_output=True,
        text=True,
    )
    return result


def compile_tree(top, out_dir):
    """Compile top/**.py into out_dir keeping the package layout; returns
    the list of failures (path, message)."""
    failures = []
    base = os.path.join(ROOT, top)
    for src in device_sources(top):
        dst = os.path.join(out_dir, os.path.relpath(src, base)[:-3] + ".mpy")
        if os.path.exists(dst) and os.path.getmtime(dst) >= os.path.getmtime(src):
            continue
        result = compile_file(src, dst)
        if result.returncode:
            failures.append((src, result.stderr.strip()))
    return failures


def micropython_env(*paths):
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join((".frozen",) + paths)
    return env


if __name__ == "__main__":
    bad = compile_tree(sys.argv[1], sys.argv[2])
    for path, msg in bad:
        print(path, msg)
    sys.exit(1 if bad else 0)
