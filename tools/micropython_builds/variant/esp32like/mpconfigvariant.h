// antbridge's "esp32like" variant of the MicroPython unix port: the object
// model, number types and error reporting of ports/esp32/mpconfigport.h
// (v1.28.0), so that heap use, small-int range and float precision on the PC
// are those of the ESP32. Built 32-bit (-m32) for the device's 4-byte
// pointers and 31-bit small ints; the 64-bit build of the same variant is
// only for comparison. See tools/micropython_builds/interp.py.

// As ports/esp32: extra-features ROM level, object representation A (31-bit
// small ints, pointers tagged in the low bits), MPZ long ints, single-
// precision floats.
#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)
#define MICROPY_OBJ_REPR (MICROPY_OBJ_REPR_A)
#define MICROPY_LONGINT_IMPL (MICROPY_LONGINT_IMPL_MPZ)
#define MICROPY_FLOAT_IMPL (MICROPY_FLOAT_IMPL_FLOAT)

// Language features ports/esp32 enables above its ROM level.
#define MICROPY_PY_ALL_INPLACE_SPECIAL_METHODS (1)
#define MICROPY_PY_IO_BUFFEREDWRITER (1)

// The unix port's common features (os, time, select, REPL...); resolved
// from ports/unix, which is on the include path.
#include "variants/mpconfigvariant_common.h"

// The common file sets DETAILED unconditionally; the ESP32 reports NORMAL
// (no argument names in messages: shorter strings, as on the device).
#undef MICROPY_ERROR_REPORTING
#define MICROPY_ERROR_REPORTING (MICROPY_ERROR_REPORTING_NORMAL)
