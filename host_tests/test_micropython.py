# Stage 2: the logic tests again, under MicroPython with a held heap, against
# lib/ compiled to .mpy as a stock firmware would load it. The interpreter is
# the 32-bit esp32like build of the v1.28.0 unix port (the ESP32's object
# model: 31-bit small ints, 4-byte pointers, single-precision floats; see
# mpbuild.micropython()). One pytest test per module, so failures show in
# pytest's summary; the test id names the build, the failure message the
# interpreter as the binary reports itself.
import glob
import os
import shutil
import subprocess

import pytest

from mpbuild import BITS, ROOT, compile_file, compile_tree, interpreter_label, micropython, micropython_env
import vectorset

BUILD = os.environ.get("ANTBRIDGE_MPTEST_BUILD") or os.path.join(ROOT, "build", "mptest")
HERE = os.path.join(ROOT, "host_tests")

# Heap per module: a device-sized budget, 96K unless the module's first line
# says otherwise ("# mp-heap: 128K"): its own data rides on top of the library.
# The budgets hold on the 32-bit build; the 64-bit one needs more.
DEFAULT_HEAP = "96K"
FLAVOUR = "esp32like%d" % BITS


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
def interpreter():
    """(path, label) of the interpreter, built on first use."""
    exe = micropython()
    return exe, interpreter_label(exe)


def test_the_interpreter_is_esp32_like(interpreter):
    # What the binary says about itself: the ESP32's word size and number
    # types (ports/esp32/mpconfigport.h: OBJ_REPR_A, FLOAT_IMPL_FLOAT).
    import interp

    exe, label = interpreter
    facts = interp.describe(exe)
    assert facts["build"] == "esp32like" and facts["version"] == "1.28.0", (label, facts)
    assert facts["bits"] == BITS and facts["pointer_bytes"] == BITS // 8, (label, facts)
    assert facts["maxsize"] == 2 ** (BITS - 1) - 1, (label, facts)
    assert facts["float_repr"] == "3.3000002", (label, facts)  # single precision, as the ESP32
    assert not facts["frozen_firmware"], (label, facts)  # stage 2 loads lib/ as .mpy files


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


@pytest.mark.parametrize("module", MODULES, ids=lambda m: "%s-%s" % (FLAVOUR, m))
def test_module_under_micropython(module, interpreter, mp_build):
    exe, label = interpreter
    heap = heap_of(module)
    result = subprocess.run(
        [exe, "-X", "heapsize=" + heap, "-m", "mp_runner", module],
        cwd=ROOT,
        env=mp_build,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    where = "MicroPython %s, heap %s" % (label, heap)
    assert result.returncode == 0, "%s on %s failed:\n%s" % (module, where, output)
    assert "FAIL" not in result.stdout, "%s on %s:\n%s" % (module, where, output)
