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

BUILD = os.path.join(ROOT, "build", "mptest")
HERE = os.path.join(ROOT, "host_tests")

# Heap per module: a device-sized budget. The test modules' own data (frames,
# expectation tables) rides on top of what the library needs.
HEAP = {"default": "96K", "test_lib_vectors": "128K"}

MODULES = sorted(
    os.path.basename(p)[:-3]
    for p in glob.glob(os.path.join(HERE, "test_lib_*.py")) + glob.glob(os.path.join(HERE, "mp_test_*.py"))
)
SUPPORT = ("mp_runner", "vectorset")


@pytest.fixture(scope="module")
def mp_build():
    shutil.rmtree(BUILD, ignore_errors=True)
    failures = compile_tree("lib", os.path.join(BUILD, "lib"))
    assert not failures, failures
    for name in MODULES + list(SUPPORT):
        result = compile_file(os.path.join(HERE, name + ".py"), os.path.join(BUILD, "tests", name + ".mpy"))
        assert result.returncode == 0, result.stderr
    jsonl = os.path.join(BUILD, "vectors.jsonl")
    vectorset.write_jsonl(jsonl)
    env = micropython_env(os.path.join(BUILD, "lib"), os.path.join(BUILD, "tests"))
    env["ANTBRIDGE_VECTORS_JSONL"] = jsonl
    return env


def test_modules_found():
    assert "test_lib_vectors" in MODULES and "mp_test_alloc" in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_module_under_micropython(module, mp_build):
    heap = HEAP.get(module, HEAP["default"])
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
