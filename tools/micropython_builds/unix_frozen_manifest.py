# The frozen unix interpreter (flavour esp32like-frozen): what the variant
# freezes (asyncio, as ports/esp32 does) plus the firmware, from the same
# firmware/manifest.py an ESP32 image is built with (esp32_frozen_manifest.py),
# with tools/hostrt/hw.py frozen as hw.
include("variant/esp32like/manifest.py")  # noqa: F821  (manifest API)
# The host runtime's hardware layer replaces the ESP32's (firmware/hw.py).
include("../../firmware/manifest.py", host_hw="../tools/hostrt/hw.py")  # noqa: F821
