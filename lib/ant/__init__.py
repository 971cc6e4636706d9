# ANT smart BMS protocol library: framer, codecs of both generations, command
# encoders, autodetection. Pure logic: runs on CPython and MicroPython alike.
