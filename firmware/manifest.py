# pyright: reportUndefinedVariable=false
# MicroPython manifest: the code frozen into the firmware image. Frozen
# bytecode runs from flash; only what a module creates at run time takes heap
# (imported from .mpy files it would also hold its bytecode and strings).
#
# Used by two builds (see README "The interpreter" and "make firmware"):
#   tools/micropython_builds/unix_frozen_manifest.py   the 32-bit unix interpreter
#                                                      the tests and `make run` use
#                                                      (with tools/hostrt/hw.py as hw)
#   tools/micropython_builds/esp32_frozen_manifest.py  the ESP32 image
# Both add their port's own frozen modules (asyncio; on the ESP32 _boot.py,
# which mounts the filesystem).
#
# Frozen: every .py under lib/ and firmware/ (found here, so a new module is
# frozen without editing this file), boot.py and main.py included: the ESP32
# runs a frozen boot.py/main.py in preference to files of that name on its
# filesystem (v1.28.0 ports/esp32/main.c -> pyexec_file_if_exists(), which
# looks in the frozen modules first), so a frozen image needs no .py file on
# the device. And microdot, the modules the firmware imports. And the
# dashboard page (www/), which this manifest builds with tools/webbuild.py
# into build/www/dashpage.py (one bytes constant: frozen, it stays in flash;
# firmware/dashboard.py serves it). Building it here keeps the image and its
# build key (tools/micropython_builds/interp.py hashes every frozen file)
# in step with every change under www/.
#
# MicroPython's manifest runner (tools/manifestfile.py) runs this file under
# CPython with firmware/ as the working directory and provides freeze() and
# package(). Written in the MicroPython subset like every file here.
import os

# http.py and pooledbody.py import Microdot, Request and Response from the
# package: microdot/__init__.py takes them from microdot/microdot.py, which
# imports nothing else of the package (helpers and sse are not used).
MICRODOT_MODULES = ("__init__.py", "microdot.py")


def _is_dir(path):
    return os.stat(path)[0] & 0xF000 == 0x4000  # S_IFDIR


def _modules(top, sub=""):
    """Every .py file under top as a path relative to it, sorted; not
    __pycache__, not this manifest."""
    out = []
    here = top + "/" + sub if sub else top
    for name in sorted(os.listdir(here)):
        rel = sub + "/" + name if sub else name
        if _is_dir(top + "/" + rel):
            if name != "__pycache__":
                out += _modules(top, rel)
        elif name.endswith(".py") and rel != "manifest.py":
            out.append(rel)
    return out


def _site_packages():
    """Where microdot is installed: $ANTBRIDGE_MICRODOT_DIR (the folder that
    holds microdot/), else the project's .venv (make setup; pinned in
    requirements.txt)."""
    chosen = os.getenv("ANTBRIDGE_MICRODOT_DIR")
    if chosen:
        return chosen
    lib = "../.venv/lib"
    for python in sorted(os.listdir(lib)):
        candidate = lib + "/" + python + "/site-packages"
        try:
            os.stat(candidate + "/microdot/microdot.py")
            return candidate
        except OSError:
            pass
    raise OSError("microdot is not installed in .venv (run make setup)")


def _dashboard_page():
    """Build the page; the folder that holds dashpage.py, or None in a tree
    without www/ (the manifest's own tests copy it alone)."""
    try:
        os.stat("../www/index.html")
    except OSError:
        return None
    import sys

    tools = os.getcwd() + "/../tools"
    if tools not in sys.path:
        sys.path.insert(0, tools)
    import webbuild  # pyright: ignore[reportMissingImports]  (CPython, at build time)

    return webbuild.build("..")["dir"]


# The unix interpreter's manifest passes host_hw (include(..., host_hw=...),
# read through `options`): the host runtime's hardware layer is frozen as
# hw.py in place of the ESP32's, so the host build holds in RAM what the
# device would.
options.defaults(host_hw=None)
host_hw = options.host_hw

freeze("../lib", _modules("../lib"))
if host_hw:
    hw_dir, _, hw_file = host_hw.rpartition("/")
    freeze(hw_dir or ".", hw_file)
    freeze(".", [m for m in _modules(".") if m != "hw.py"])
else:
    freeze(".", _modules("."))
package("microdot", files=list(MICRODOT_MODULES), base_path=_site_packages())
page_dir = _dashboard_page()
if page_dir:
    freeze(page_dir, "dashpage.py")
