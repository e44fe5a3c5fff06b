#!/bin/sh
# The mailtap benchmark in one command: see bench/README.md.
#   bench/run.sh --quick      a small sanity run (50 MB)
#   bench/run.sh --build      the full run, mailtap built from HEAD
# Debian's python3 has matplotlib (python3-matplotlib) for the plot; any
# python3 runs the rest.
here=$(dirname "$0")
py=python3
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
    py=/usr/bin/python3
fi
exec "$py" "$here/run.py" "$@"
