# What ports/esp32 freezes that the firmware uses: asyncio.
include("$(MPY_DIR)/extmod/asyncio")
