# The fake device's boot script (MicroPython unix port, `micropython -i
# tools/devboot.py`; tools/fakedevice.py starts it on a pty): the filesystem
# root "/" becomes the folder $DEVFS, so mpremote's `:/lib/x.mpy` lands in
# $DEVFS/lib/x.mpy and never in the host's /lib, and the module search path
# is the ESP32 port's. A path mapping for tests, not a sandbox: os.system
# still exists on the unix port.
import os
import sys

import vfs

_root = os.getenv("DEVFS")
if not _root:
    raise SystemExit("devboot: DEVFS is not set (the folder that stands in for the device's filesystem)")
vfs.umount("/")
vfs.mount(vfs.VfsPosix(_root), "/")
os.chdir("/")
sys.path[:] = ["", ".frozen", "/lib"]  # the ESP32 port's sys.path
del _root
