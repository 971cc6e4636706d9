# Stage 2: the logic tests again, under the real MicroPython unix port with a
# held heap, against lib/ compiled to .mpy as it is deployed on the ESP32.
# One pytest test per module, so failures show in pytest's summary.
import glob
import os
import shutil
import subprocess

import pytest

from mpbuild import MICROPYTHON, ROOT, compile_file, compile_tree, micropython_env
import vectorset

BUILD = os.environ.get("ANTBRIDGE_MPTEST_BUILD") or os.path.join(ROOT, "build", "mptest")
HERE = os.path.join(ROOT, "host_tests")

# Heap per module: a device-sized budget, 96K unless the module's first line
# says otherwise ("# mp-heap: 128K"): its own data rides on top of the library.
DEFAULT_HEAP = "96K"


def heap_of(module):
    with open(os.path.join(HERE, module + ".py")) as f:
        first = f.readline()
    if first.startswith("# mp-heap:"):
        return first.split(":", 1)[1].strip()
    return DEFAULT_HEAP

MODULES = sorted(
    os.path.basename(p)[:-3]
    for p in glob.glob(os.path.join(HERE, "test_lib_*.py")) + glob.glob(os.path.join(HERE, "mp_test_*.py"))
)
# Helper modules the tests import (fakes, loaders, the runner). CPython-only
# helpers that mpy-cross rejects are simply not available under MicroPython.
SUPPORT = sorted(
    os.path.basename(p)[:-3]
    for p in glob.glob(os.path.join(HERE, "*.py"))
    if not os.path.basename(p).startswith(("test_", "mp_test_", "conftest"))
)


@pytest.fixture(scope="module")
def mp_build():
    shutil.rmtree(BUILD, ignore_errors=True)
    failures = compile_tree("lib", os.path.join(BUILD, "lib"))
    assert not failures, failures
    for name in MODULES:
        result = compile_file(os.path.join(HERE, name + ".py"), os.path.join(BUILD, "tests", name + ".mpy"))
        assert result.returncode == 0, result.stderr
    for name in SUPPORT:
        compile_file(os.path.join(HERE, name + ".py"), os.path.join(BUILD, "tests", name + ".mpy"))
    jsonl = os.path.join(BUILD, "vectors.jsonl")
    vectorset.write_jsonl(jsonl)
    env = micropython_env(os.path.join(BUILD, "lib"), os.path.join(BUILD, "tests"))
    env["ANTBRIDGE_VECTORS_JSONL"] = jsonl
    return env


def test_modules_found():
    assert "test_lib_vectors" in MODULES and "mp_test_alloc" in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_module_under_micropython(module, mp_build):
    heap = heap_of(module)
    result = subprocess.run(
        [MICROPYTHON, "-X", "heapsize=" + heap, "-m", "mp_runner", module],
        cwd=ROOT,
        env=mp_build,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, "MicroPython run of %s (heap %s) failed:\n%s" % (module, heap, output)
    assert "FAIL" not in result.stdout, output
