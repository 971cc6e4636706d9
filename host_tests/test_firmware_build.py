# `make firmware` (tools/micropython_builds/firmware.py) and the manifest it
# freezes. The ESP32 build itself needs ESP-IDF or docker, neither of which
# is here: what is tested is everything around it, against MicroPython's own
# v1.28.0 tree (its board definitions, its manifest tool, its README).
import os
import shlex
import shutil

import pytest

import firmware
import interp
import mpbuild
import run
from firmware import FirmwareError

ROOT = mpbuild.ROOT
REQUIRED = {"esp32-devkitc": ("ESP32_GENERIC", ""), "esp32-c3-supermini": ("ESP32_GENERIC_C3", ""),
            "esp32-s3-devkitc-1": ("ESP32_GENERIC_S3", "SPIRAM_OCT")}
BOARD_FILES = sorted(f[:-5] for f in os.listdir(os.path.join(ROOT, "boards")) if f.endswith(".json"))


@pytest.fixture(scope="module")
def tree():
    return interp.tree(log=lambda m: None)


# -- the board mapping ---------------------------------------------------------------------


def test_the_esp32_boards_map_to_micropythons_generic_boards():
    for name, (board, variant) in REQUIRED.items():
        t = firmware.target(name)
        assert (t.mp_board, t.mp_variant) == (board, variant), name


@pytest.mark.parametrize("name", [n for n in BOARD_FILES if n != "host"])
def test_each_board_maps_to_a_micropython_board_of_its_chip_and_psram(name, tree):
    t = firmware.target(name)
    info = firmware.check_in_tree(t, tree)
    assert info["mcu"] == t.chip, (name, info["mcu"])  # MicroPython's board.json names the chip
    # The variant is the one MicroPython describes for the board's PSRAM.
    described = info.get("variants", {}).get(t.mp_variant, "") if t.mp_variant else ""
    if t.psram == "octal":
        assert "Octal-SPIRAM" in described, (name, described)
    elif t.psram == "quad":
        assert "SPIRAM" in described and "Octal" not in described, (name, described)
    else:
        assert "SPIRAM" not in described, (name, described)


def test_the_host_board_has_no_firmware_image():
    with pytest.raises(FirmwareError, match="host has no MicroPython firmware"):
        firmware.target("host")
    with pytest.raises(FirmwareError, match="no board file .*nope.json"):
        firmware.target("nope")


def board_copy(tmp_path, change):
    import json

    with open(os.path.join(ROOT, "boards", "esp32-devkitc.json")) as f:
        d = json.load(f)
    change(d)
    (tmp_path / "wrover.json").write_text(json.dumps(d))
    return firmware.target("wrover", str(tmp_path))


def test_a_psram_board_needs_the_spiram_variant(tmp_path, tree):
    def wrover(variant):
        def change(d):
            d["psram"] = "quad"
            d["uart"].update(tx=22, rx=21)  # GPIO16/17 belong to the PSRAM
            d["micropython"]["variant"] = variant
        return change

    with pytest.raises(FirmwareError, match="psram quad: its MicroPython variant must be one of 'SPIRAM'"):
        board_copy(tmp_path, wrover(""))
    t = board_copy(tmp_path, wrover("SPIRAM"))
    assert firmware.check_in_tree(t, tree)["variants"]["SPIRAM"].endswith("WROVER")
    with pytest.raises(FirmwareError, match="no variant SPIRAM_OCT"):
        firmware.check_in_tree(firmware.Target("x", "esp32", "octal", "ESP32_GENERIC", "SPIRAM_OCT"), tree)
    with pytest.raises(FirmwareError, match="is for esp32s3, board x has esp32"):
        firmware.check_in_tree(firmware.Target("x", "esp32", "none", "ESP32_GENERIC_S3", ""), tree)


# -- the command it runs ---------------------------------------------------------------------


def test_the_idf_version_is_the_one_micropython_recommends(tree):
    with open(os.path.join(tree, "ports", "esp32", "README.md")) as f:
        readme = f.read()
    assert "recommended version of ESP-IDF for MicroPython is %s." % firmware.IDF_VERSION in readme


def test_the_make_command_line(tree):
    t = firmware.target("esp32-s3-devkitc-1")
    make = ["make", "-C", tree + "/ports/esp32", "BOARD=ESP32_GENERIC_S3", "BOARD_VARIANT=SPIRAM_OCT",
            "BUILD=" + ROOT + "/build/firmware/esp32-s3-devkitc-1",
            "FROZEN_MANIFEST=" + ROOT + "/tools/micropython_builds/esp32_frozen_manifest.py",
            "CMAKE_ARGS=-DMICROPY_PY_BTREE=0"]
    assert firmware.command(t, "idf", tree) == make
    assert firmware.command(t, "idf-export", tree) == [
        "bash", "-c", '. "$IDF_PATH/export.sh" >/dev/null && exec ' + shlex.join(make)]
    assert firmware.command(t, "docker", tree, uid=1000, gid=1000) == [
        "docker", "run", "--rm", "-u", "1000:1000", "-e", "HOME=/tmp", "-v", ROOT + ":" + ROOT, "-w", ROOT,
        "espressif/idf:v5.5.1"] + make
    plain = firmware.command(firmware.target("esp32-devkitc"), "idf", tree)
    assert "BOARD=ESP32_GENERIC" in plain and not any(a.startswith("BOARD_VARIANT") for a in plain)
    # The port's Makefile really takes these: BOARD_VARIANT, BUILD,
    # FROZEN_MANIFEST, and CMAKE_ARGS passed on to idf.py.
    with open(os.path.join(tree, "ports", "esp32", "Makefile")) as f:
        port_make = f.read()
    for needle in ("BOARD_VARIANT", "BUILD ?=", "MICROPY_FROZEN_MANIFEST=$(FROZEN_MANIFEST)", "$(CMAKE_ARGS)"):
        assert needle in port_make, needle
    with open(os.path.join(tree, "ports", "esp32", "esp32_common.cmake")) as f:
        assert "if (NOT DEFINED MICROPY_PY_BTREE)" in f.read()


def test_dry_run_prints_the_command_and_builds_nothing(capsys):
    out_dir = os.path.join(ROOT, "build", "firmware", "esp32-c3-supermini")
    existed = os.path.exists(out_dir)
    assert firmware.main(["--board", "esp32-c3-supermini", "--dry-run", "--toolchain", "docker"]) == 0
    out = capsys.readouterr().out
    t = firmware.target("esp32-c3-supermini")
    assert "-> MicroPython 1.28.0 ESP32_GENERIC_C3 (standard variant), toolchain espressif/idf:v5.5.1" in out
    assert "would run: " + shlex.join(firmware.command(t, "docker")) + "\n" in out
    assert os.path.exists(out_dir) == existed


def test_the_flash_command_uses_micropythons_offset(tree):
    for name, offset in (("esp32-devkitc", "0x1000"), ("esp32-s3-devkitc-1", "0x0")):
        t = firmware.target(name)
        info = firmware.check_in_tree(t, tree)
        cmd = firmware.flash_command(t, info, "fw.bin")
        assert cmd == ["esptool.py", "--chip", t.chip, "--port", "/dev/ttyUSB0", "--baud", "460800", "write_flash",
                       offset, "fw.bin"]


def test_the_toolchain_is_found_or_named_in_one_line(tmp_path):
    def which(found):
        return lambda name, path=None: "/usr/bin/" + name if name in found else None

    def docker(up):
        return lambda: up

    assert firmware.toolchain({"PATH": "/x"}, which({"idf.py", "docker"}), docker(True)) == "idf"
    idf = tmp_path / "esp-idf"
    idf.mkdir()
    (idf / "export.sh").write_text("")
    assert firmware.toolchain({"PATH": "/x", "IDF_PATH": str(idf)}, which({"docker"}), docker(True)) == "idf-export"
    assert firmware.toolchain({"PATH": "/x"}, which({"docker"}), docker(True)) == "docker"
    for found, up in (({"docker"}, False), (set(), False)):
        with pytest.raises(FirmwareError) as info:
            firmware.toolchain({"PATH": "/x", "IDF_PATH": str(tmp_path / "none")}, which(found), docker(up))
        message = str(info.value)
        assert "\n" not in message and "ESP-IDF v5.5.1" in message and "docker" in message


def test_without_a_toolchain_make_firmware_fails_with_that_line(capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("IDF_PATH", raising=False)
    assert firmware.main(["--board", "esp32-devkitc"]) == 1
    err = capsys.readouterr().err
    assert err == "firmware: " + firmware.NEEDS + "\n"


# -- the manifest ------------------------------------------------------------------------------


def device_modules():
    out = []
    for top in ("lib", "firmware"):
        base = os.path.join(ROOT, top)
        out += [os.path.relpath(p, base) for p in mpbuild.device_sources(top)]
    return sorted(m for m in out if m != "manifest.py")


def test_the_esp32_image_freezes_the_port_modules_and_every_device_module(tree):
    frozen = [target for target, _ in interp.frozen_files(firmware.ESP32_MANIFEST, tree, port="esp32")]
    assert len(frozen) == len(set(frozen)), "a module name is frozen twice"
    for wanted in ["_boot.py", "asyncio/core.py", "boot.py", "main.py", "microdot/__init__.py",
                   "microdot/microdot.py"] + device_modules():
        assert wanted in frozen, wanted
    assert "manifest.py" not in frozen


def test_the_unix_image_freezes_exactly_the_device_modules_and_microdot(tree):
    frozen = dict(interp.frozen_files(interp.UNIX_FROZEN_MANIFEST, tree))
    ours = sorted(t for t, path in frozen.items() if path.startswith((ROOT + "/lib/", ROOT + "/firmware/")))
    assert ours == [m for m in device_modules() if m != "hw.py"]
    # The host runtime's hardware layer in place of the ESP32's.
    assert frozen["hw.py"] == os.path.join(ROOT, "tools", "hostrt", "hw.py")
    microdot = sorted(t for t in frozen if t.startswith("microdot/"))
    assert microdot == sorted("microdot/%s.py" % m for m in run.MICRODOT_MODULES)  # the same set as make run --deploy mpy
    assert frozen["microdot/microdot.py"] == os.path.join(run.microdot_source(), "microdot.py")


def layout(tmp_path):
    """firmware/manifest.py in a copy of the repository's layout, with a few
    modules of its own (one added under lib/ and one under firmware/)."""
    (tmp_path / "firmware").mkdir()
    shutil.copyfile(os.path.join(ROOT, "firmware", "manifest.py"), tmp_path / "firmware" / "manifest.py")
    (tmp_path / "firmware" / "main.py").write_text("")
    (tmp_path / "firmware" / "fresh.py").write_text("")
    (tmp_path / "lib" / "newpkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "lib" / "newpkg" / "__init__.py").write_text("")
    (tmp_path / "lib" / "newpkg" / "part.py").write_text("")
    (tmp_path / "lib" / "newpkg" / "__pycache__" / "part.cpython-311.pyc").write_text("")
    (tmp_path / "lib" / "notes.txt").write_text("")
    site = tmp_path / ".venv" / "lib" / "python3.11" / "site-packages" / "microdot"
    site.mkdir(parents=True)
    for m in ("__init__.py", "microdot.py", "sse.py"):
        (site / m).write_text("")
    return str(tmp_path / "firmware" / "manifest.py")


def test_a_new_module_is_frozen_without_editing_the_manifest(tmp_path, tree):
    frozen = sorted(t for t, _ in interp.frozen_files(layout(tmp_path), tree))
    assert frozen == ["fresh.py", "main.py", "microdot/__init__.py", "microdot/microdot.py", "newpkg/__init__.py",
                      "newpkg/part.py"]


def test_the_frozen_build_is_redone_when_a_frozen_file_changes(tmp_path, tree):
    # The build key covers the content of every frozen file (not its mtime).
    manifest = layout(tmp_path)
    flavour = interp.FLAVOURS["esp32like-frozen"]
    key = interp.build_key(flavour, tree, manifest)
    part = tmp_path / "lib" / "newpkg" / "part.py"
    os.utime(part, (1, 1))
    assert interp.build_key(flavour, tree, manifest) == key  # same content, older file: nothing to redo
    part.write_text("X = 1\n")
    changed = interp.build_key(flavour, tree, manifest)
    assert changed != key
    (tmp_path / "firmware" / "later.py").write_text("")
    assert interp.build_key(flavour, tree, manifest) not in (key, changed)  # a new module too
    assert interp.build_key(interp.FLAVOURS["esp32like"], tree) != interp.build_key(
        interp.FLAVOURS["esp32like64"], tree)  # the word size is part of the make line
