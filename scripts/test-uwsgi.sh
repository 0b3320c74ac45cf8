#!/bin/sh
# Tests a uWSGI configuration read from standard input, strictly.
t=$(mktemp) && cat > "$t" && uwsgi --strict --ini "$t" --get chdir >/dev/null
rc=$?
rm -f "$t"
exit $rc
