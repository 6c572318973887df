"""What scripts/test-templates.py and scripts/test-buildspecs.py share: `check` and a runner
that calls every `test_*` function of the script, reports each, and exits 1 if any failed."""

import sys
import textwrap


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def run_tests(scope, label, after_each=None):
    """Run the `test_*` functions of `scope` (a script's globals()) whose name contains the
    first command-line argument, if any; `after_each` cleans up after every test."""
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    tests = [(n, f) for n, f in sorted(scope.items()) if n.startswith("test_") and only in n]
    passed = failed = 0
    for name, f in tests:
        try:
            f()
        except Exception as e:  # report every test, then fail
            failed += 1
            print(f"FAIL {name}:\n{textwrap.indent(str(e), '    ')}", file=sys.stderr)
        else:
            passed += 1
            print(f"ok   {name}")
        finally:
            if after_each:
                after_each()
    print(f"{label}: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
