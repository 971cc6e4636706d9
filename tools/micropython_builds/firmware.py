#!/usr/bin/env python3
"""`make firmware BOARD=esp32-devkitc`: a MicroPython v1.28.0 image for the
board with the firmware frozen in (firmware/manifest.py, through
esp32_frozen_manifest.py which adds the port's own frozen modules).

The board file's "micropython" entry names the MicroPython board and
variant (boards/esp32-s3-devkitc-1.json -> ESP32_GENERIC_S3 SPIRAM_OCT). The
source tree is the verified one the host interpreters are built from
(sources.py); the port's make runs either with a local ESP-IDF (idf.py on
PATH, or $IDF_PATH/export.sh sourced first) or in Espressif's ESP-IDF docker
image. berkeley-db, a submodule the source archives lack, is left out with
MICROPY_PY_BTREE=0 (the firmware does not use btree). The ESP-IDF component
manager downloads the port's components (mdns, and tinyusb on the S3) on
the first build: that needs internet access.

--dry-run prints what it would run and changes nothing.
"""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "lib"))
import interp  # noqa: E402
import sources  # noqa: E402

# ports/esp32/README.md of v1.28.0: v5.5.1 recommended; v5.3, v5.4, v5.4.1
# and v5.4.2 also supported.
IDF_VERSION = "v5.5.1"
IDF_SUPPORTED = ("v5.3", "v5.4", "v5.4.1", "v5.4.2", "v5.5.1")
DOCKER_IMAGE = "espressif/idf:" + IDF_VERSION
ESP32_MANIFEST = os.path.join(HERE, "esp32_frozen_manifest.py")
OUT = os.path.join(ROOT, "build", "firmware")
# The MicroPython variant a board's PSRAM needs: a SPIRAM image on a board
# without PSRAM wastes RAM on the PSRAM driver, and a plain image leaves the
# PSRAM unused.
PSRAM_VARIANTS = {"none": ("", "D2WD", "OTA", "UNICORE"), "quad": ("SPIRAM",), "octal": ("SPIRAM_OCT",)}
NEEDS = ("make firmware needs ESP-IDF %s (idf.py on PATH, or IDF_PATH set: "
         "https://docs.espressif.com/projects/esp-idf/en/%s/esp32/get-started/) "
         "or a running docker engine (image %s); found neither" % (IDF_VERSION, IDF_VERSION, DOCKER_IMAGE))


class FirmwareError(Exception):
    pass


class Target:
    """A board file and the MicroPython board/variant it maps to."""

    def __init__(self, name, chip, psram, mp_board, mp_variant):
        self.name = name
        self.chip = chip
        self.psram = psram
        self.mp_board = mp_board
        self.mp_variant = mp_variant


def target(board_name, boards_dir=None):
    """boards/<board_name>.json, validated by lib/board.py, as a Target."""
    import board as board_lib
    from schema import ConfigError

    boards_dir = boards_dir or os.path.join(ROOT, "boards")
    path = os.path.join(boards_dir, board_name + ".json")
    if not os.path.isfile(path):
        known = sorted(f[:-5] for f in os.listdir(boards_dir) if f.endswith(".json"))
        raise FirmwareError("no board file %s (boards: %s)" % (path, ", ".join(known)))
    try:
        b = board_lib.load_file(path)
    except ConfigError as e:
        raise FirmwareError("%s: %s" % (path, e))
    if not b.mp_board:
        raise FirmwareError("board %s has no MicroPython firmware (no \"micropython\" entry in %s)" % (board_name, path))
    if b.mp_variant not in PSRAM_VARIANTS[b.psram]:
        raise FirmwareError("board %s has psram %s: its MicroPython variant must be one of %s, not %r" % (
            board_name, b.psram, ", ".join(repr(v) for v in PSRAM_VARIANTS[b.psram]), b.mp_variant))
    return Target(board_name, b.chip, b.psram, b.mp_board, b.mp_variant)


def check_in_tree(t, tree):
    """The MicroPython board exists for the chip and has the variant."""
    board_dir = os.path.join(tree, "ports", "esp32", "boards", t.mp_board)
    try:
        with open(os.path.join(board_dir, "board.json")) as f:
            info = json.load(f)
    except OSError:
        raise FirmwareError("MicroPython %s has no ESP32 board %s" % (sources.MICROPYTHON_VERSION, t.mp_board))
    if info.get("mcu") != t.chip:
        raise FirmwareError("MicroPython board %s is for %s, board %s has %s" % (t.mp_board, info.get("mcu"), t.name, t.chip))
    if t.mp_variant and not os.path.isfile(os.path.join(board_dir, "mpconfigvariant_%s.cmake" % t.mp_variant)):
        raise FirmwareError("MicroPython board %s has no variant %s" % (t.mp_board, t.mp_variant))
    return info


# -- the toolchain -----------------------------------------------------------------------------


def _docker_running(run=subprocess.run):
    try:
        return run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def toolchain(environ=None, which=shutil.which, docker_running=_docker_running):
    """"idf" (idf.py on PATH), "idf-export" (IDF_PATH set: export.sh is
    sourced first), "docker", or FirmwareError saying what is needed."""
    environ = os.environ if environ is None else environ
    if which("idf.py", path=environ.get("PATH")):
        return "idf"
    idf_path = environ.get("IDF_PATH")
    if idf_path and os.path.isfile(os.path.join(idf_path, "export.sh")):
        return "idf-export"
    if which("docker", path=environ.get("PATH")) and docker_running():
        return "docker"
    raise FirmwareError(NEEDS)


def image_name(t):
    variant = "-" + t.mp_variant if t.mp_variant else ""
    return "antbridge-%s-micropython-%s%s.bin" % (t.name, sources.MICROPYTHON_VERSION, variant)


def build_dir(t):
    return os.path.join(OUT, t.name)


def make_command(t, tree=None):
    """The port's make command line (run in the tree's root)."""
    tree = tree or interp.TREE
    cmd = ["make", "-C", os.path.join(tree, "ports", "esp32"), "BOARD=" + t.mp_board]
    if t.mp_variant:
        cmd.append("BOARD_VARIANT=" + t.mp_variant)
    cmd += ["BUILD=" + build_dir(t), "FROZEN_MANIFEST=" + ESP32_MANIFEST,
            "CMAKE_ARGS=-DMICROPY_PY_BTREE=0"]
    return cmd


def command(t, chain, tree=None, uid=None, gid=None):
    """The whole command line for a toolchain."""
    make = make_command(t, tree)
    if chain == "idf":
        return make
    if chain == "idf-export":
        return ["bash", "-c", '. "$IDF_PATH/export.sh" >/dev/null && exec ' + shlex.join(make)]
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    # The repository (with the tree under build/mp/src and the .venv that
    # holds microdot) at the same path inside the container; files written
    # as the calling user; the image's entrypoint sources export.sh.
    return ["docker", "run", "--rm", "-u", "%d:%d" % (uid, gid), "-e", "HOME=/tmp", "-v", "%s:%s" % (ROOT, ROOT),
            "-w", ROOT, DOCKER_IMAGE] + make


def flash_command(t, info, image, port="/dev/ttyUSB0"):
    """How to write the image (offset from MicroPython's board.json)."""
    offset = info.get("deploy_options", {}).get("flash_offset", "0")
    offset = offset if offset.startswith("0x") else "0x%x" % int(offset, 16)
    return ["esptool.py", "--chip", t.chip, "--port", port, "--baud", "460800", "write_flash", offset, image]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--board", default="esp32-devkitc", help="a board file name in boards/ (default esp32-devkitc)")
    p.add_argument("--toolchain", choices=("auto", "idf", "idf-export", "docker"), default="auto",
                   help="auto (default): idf.py on PATH, else $IDF_PATH, else docker")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = p.parse_args(argv)
    try:
        t = target(args.board)
        chain = toolchain() if args.toolchain == "auto" else args.toolchain
        cmd = command(t, chain)
        variant = t.mp_variant or "standard variant"
        print("firmware: board %s (%s, PSRAM %s) -> MicroPython %s %s (%s), toolchain %s" % (
            t.name, t.chip, t.psram, sources.MICROPYTHON_VERSION, t.mp_board, variant,
            DOCKER_IMAGE if chain == "docker" else "ESP-IDF " + chain))
        image = os.path.join(OUT, image_name(t))
        if args.dry_run:
            if os.path.isfile(os.path.join(interp.TREE, sources.STAMP)):
                check_in_tree(t, interp.TREE)
            print("would run: " + shlex.join(cmd))
            print("then copy: %s -> %s" % (os.path.join(build_dir(t), "firmware.bin"), image))
            return 0
        info = check_in_tree(t, interp.tree())  # the verified tree; its mpy-cross compiles the frozen modules
        print("firmware: " + shlex.join(cmd), flush=True)
        r = subprocess.run(cmd, env=interp.clean_env())
        if r.returncode:
            raise FirmwareError("the ESP32 build failed (exit %d)" % r.returncode)
        shutil.copyfile(os.path.join(build_dir(t), "firmware.bin"), image)
        print("firmware: %s" % os.path.relpath(image, ROOT))
        print("flash it: esptool.py --chip %s erase_flash   (first time: a clean filesystem)" % t.chip)
        print("          " + shlex.join(flash_command(t, info, os.path.relpath(image, ROOT))))
        return 0
    except (FirmwareError, interp.BuildError, sources.SourceError) as e:
        print("firmware: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
