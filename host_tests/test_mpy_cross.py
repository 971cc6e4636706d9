# Stage 3: every file that goes onto the device compiles with the ESP32's
# mpy-cross (it rejects syntax MicroPython lacks: match, {**d}, [*a], /, ...).
import os

import pytest

from mpbuild import ROOT, compile_file, device_sources

SOURCES = device_sources("lib", "firmware")


def test_there_is_device_code():
    assert any(p.endswith(os.path.join("ant", "framer.py")) for p in SOURCES)


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: os.path.relpath(p, ROOT))
def test_compiles_for_xtensawin(src, tmp_path):
    result = compile_file(src, str(tmp_path / "out.mpy"))
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "out.mpy", "rb") as f:
        header = f.read(4)
    assert header[0:2] == b"M\x06"  # mpy v6, loadable by firmware 1.22+
