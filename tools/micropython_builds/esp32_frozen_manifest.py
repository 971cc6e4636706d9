# The ESP32 image of `make firmware`: everything the stock MicroPython board
# freezes (_boot.py, which mounts the filesystem; asyncio; the networking
# bundle; ...) plus the firmware, from the same firmware/manifest.py the frozen
# unix interpreter is built with (unix_frozen_manifest.py).
include("$(PORT_DIR)/boards/manifest.py")  # noqa: F821  (manifest API)
include("../../firmware/manifest.py")  # noqa: F821
