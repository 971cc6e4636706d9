# Stage 4: pyright over lib/ and firmware/ against the ESP32 MicroPython stubs
# only (an empty fake venv keeps CPython's stdlib out: `import subprocess`
# must fail here the way it fails on the device).
import json
import os
import subprocess

from mpbuild import BIN, ROOT


def run_pyright(*extra):
    result = subprocess.run(
        [os.path.join(BIN, "pyright"), "--outputjson", *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return json.loads(result.stdout)


def test_cpython_stdlib_does_not_leak_into_the_device_check(tmp_path):
    probe = os.path.join(ROOT, "build", "pyright_probe")
    os.makedirs(probe, exist_ok=True)
    with open(os.path.join(probe, "probe.py"), "w") as f:
        f.write("import subprocess\nimport machine\nimport network\nmachine.Pin(2, machine.Pin.OUT)\n")
    report = run_pyright(os.path.relpath(probe, ROOT))
    messages = [d["message"] for d in report["generalDiagnostics"]]
    assert any('"subprocess"' in m for m in messages), messages
    assert not any("machine" in m or "network" in m for m in messages), messages


def test_lib_and_firmware_type_check_against_esp32_stubs():
    report = run_pyright()
    errors = [
        "%s:%d: %s" % (os.path.relpath(d["file"], ROOT), d["range"]["start"]["line"] + 1, d["message"])
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    ]
    assert report["summary"]["filesAnalyzed"] > 5
    assert not errors, "\n".join(errors)
