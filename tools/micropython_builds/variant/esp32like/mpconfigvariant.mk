# antbridge's esp32like variant (see mpconfigvariant.h). The word size comes
# from the command line (CFLAGS_EXTRA/LDFLAGS_EXTRA=-m32), set by
# tools/micropython_builds/interp.py, as do MICROPY_PY_BTREE/FFI/SSL=0.

# asyncio frozen, as on the ESP32; the firmware build overrides this with
# tools/micropython_builds/unix_frozen_manifest.py (asyncio + firmware/manifest.py).
FROZEN_MANIFEST ?= $(VARIANT_DIR)/manifest.py
