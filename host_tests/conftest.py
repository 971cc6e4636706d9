# make test runs four stages in order and stops after the first failing one:
#   1. the tests under CPython (everything not named below)
#   2. the logic tests again under the MicroPython unix port (test_micropython)
#   3. mpy-cross -march=xtensawin over every device file (test_mpy_cross)
#   4. pyright against the ESP32 stubs (test_pyright)
# Tests that run MicroPython name the interpreter they ran on: stage 2 in
# its test ids and failure messages, the end-to-end tests in a "MicroPython"
# section of a failure report; the summary lists every interpreter used.
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for sub in ("lib", "tools", "tools/micropython_builds", "host_tests"):
    path = os.path.join(ROOT, sub)
    if path not in sys.path:
        sys.path.insert(0, path)

_STAGES = {"test_micropython.py": 2, "test_mpy_cross.py": 3, "test_pyright.py": 4}


def stage(item):
    return _STAGES.get(os.path.basename(str(item.fspath)), 1)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=stage)  # stable: keeps file order within a stage


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    yield
    session = item.session
    if session.testsfailed and nextitem is not None and stage(nextitem) > stage(item):
        session.shouldstop = "stage %d failed: later stages not run" % stage(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    fwproc = sys.modules.get("fwproc")
    if report.failed and os.path.basename(str(item.fspath)).startswith("test_e2e_") and fwproc is not None:
        if fwproc._runtime is not None:
            report.sections.append(("MicroPython", "the firmware ran on " + fwproc.interpreter()))


def pytest_terminal_summary(terminalreporter):
    mpbuild = sys.modules.get("mpbuild")
    if mpbuild is None or not mpbuild.USED:
        return
    for exe in sorted(mpbuild.USED):
        terminalreporter.write_line("MicroPython used: %s (%s)" % (mpbuild.interpreter_label(exe), os.path.relpath(exe, ROOT)))
    fwproc = sys.modules.get("fwproc")
    if fwproc is not None and fwproc._runtime is not None:
        terminalreporter.write_line("end-to-end firmware: " + fwproc.interpreter())
