#!/bin/sh
# Checks the syntax of an init script read from standard input.
sh -n
