#!/bin/sh
# Makes a private copy of Debian's static jemalloc for libgprof.so.
#
#   embed_jemalloc.sh OBJCOPY IN.a OUT.a
#
# Every global name the archive defines gets the prefix `gprof_je_`, so nothing in it can bind to
# (or be bound by) the program's own `malloc`, a system libjemalloc.so.2, or a program's
# `malloc_conf`. Two libc calls are routed to gprof (preload/jemalloc_conf.cpp) so the embedded
# copy takes its options from gprof, never from the program's MALLOC_CONF or /etc/malloc.conf.
# The C++ operator member is dropped: gprof defines those operators itself.
set -eu
objcopy=$1
in=$(realpath "$2")
out=$(realpath -m "$3")
work=$(mktemp -d "${TMPDIR:-/tmp}/gprof-je.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
ar x "$in"
rm -f jemalloc_cpp.pic.o jemalloc_cpp.o
nm --defined-only -g ./*.o | awk 'NF == 3 { print $3 " gprof_je_" $3 }' | sort -u > syms
printf '%s\n' 'secure_getenv gprof_je_secure_getenv' 'readlink gprof_je_readlink' >> syms
for o in ./*.o; do "$objcopy" --redefine-syms=syms "$o"; done
rm -f "$out"
ar rcs "$out" ./*.o
