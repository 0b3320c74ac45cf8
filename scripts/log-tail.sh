#!/bin/sh
# Prints the end of a log that says why the application fails: its last
# Python traceback, up to the exception's line and shortened to 20 lines
# (the first, then the last ones, nearest the error), or else its last 15
# lines; request lines (uWSGI's and gunicorn's access log) left out.
# Arguments: log
tail -n 400 -- "$1" 2>/dev/null | grep -v -E '^\[pid|"(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) [^"]* HTTP/[0-9.]+" [0-9]{3} ' | awk '
    { line[NR] = $0 }
    /Traceback \(most recent call last\)/ { start = NR }
    END {
        if (!start) {
            for (i = (NR > 15 ? NR - 14 : 1); i <= NR; i++) print line[i]
            exit
        }
        stop = NR
        for (i = start + 1; i <= NR; i++) if (line[i] !~ /^[ \t]/) { stop = i; break }
        if (stop - start + 1 <= 20) {
            for (i = start; i <= stop; i++) print line[i]
            exit
        }
        print line[start]
        printf "  ... (%d lines left out)\n", stop - start - 18
        for (i = stop - 17; i <= stop; i++) print line[i]
    }'
