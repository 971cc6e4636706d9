# Runs the test_* functions of one module under the MicroPython unix port:
#   micropython -X heapsize=96K host_tests/mp_runner.py test_lib_framer
# Plain asserts, no fixtures: the same module also runs under pytest.
import gc
import sys


def main():
    name = sys.argv[1]
    only = sys.argv[2] if len(sys.argv) > 2 else None
    module = __import__(name)
    names = sorted(n for n in dir(module) if n.startswith("test_") and (only is None or n == only))
    failed = 0
    for n in names:
        gc.collect()
        try:
            getattr(module, n)()
            print("PASS", n)
        except Exception as e:  # report every failure, keep going
            failed += 1
            print("FAIL", n)
            sys.print_exception(e)
    gc.collect()
    print("mp: %s: %d tests, %d failed, heap free %d" % (name, len(names), failed, gc.mem_free()))
    if not names:
        print("no tests found")
        sys.exit(2)
    sys.exit(1 if failed else 0)


main()
