# The frozen unix interpreter (flavour esp32like-frozen): what the variant
# freezes (asyncio, as ports/esp32 does) plus the firmware, from the same
# firmware/manifest.py an ESP32 image is built with (esp32_frozen_manifest.py).
include("variant/esp32like/manifest.py")  # noqa: F821  (manifest API)
include("../../firmware/manifest.py")  # noqa: F821
