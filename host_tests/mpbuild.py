# Compiling device code with mpy-cross, shared by the test stages and tools.
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".venv", "bin")
MPY_CROSS = os.path.join(BIN, "mpy-cross")
MICROPYTHON = os.path.join(BIN, "micropython")


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
