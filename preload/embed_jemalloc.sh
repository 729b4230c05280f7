#!/bin/sh
# Makes a private copy of Debian's static jemalloc for libgprof.so.
#
#   embed_jemalloc.sh OBJCOPY IN.a OUT.a
#
# Every global name the archive defines gets the prefix `gprof_je_`, so nothing in it binds to (or
# is bound by) the program's `malloc`, a system libjemalloc.so.2 or a program's `malloc_conf`; two
# libc calls are routed to gprof (preload/jemalloc_conf.cpp), so its options never come from the
# program's MALLOC_CONF or /etc/malloc.conf. The C++ operator member is dropped (gprof defines
# those). Internal calls of jemalloc's profiler are pointed at preload/jemalloc_sampling.cpp, which
# relies on jemalloc 5.3.0's internals (the layout of three structures): other versions are refused.
set -eu
objcopy=$1
in=$(realpath "$2")
out=$(realpath -m "$3")
work=$(mktemp -d "${TMPDIR:-/tmp}/gprof-je.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
ar x "$in"
rm -f jemalloc_cpp.pic.o jemalloc_cpp.o
# jemalloc starts itself from a constructor; gprof starts it when it is the backing allocator
# (preload/backing.cpp), so GPROF_ALLOCATOR=libc and a foreign allocator never pay for it.
for o in ./jemalloc.pic.o ./jemalloc.o; do
    if [ -f "$o" ]; then
        "$objcopy" --remove-section .init_array --remove-section .rela.init_array "$o"
    fi
done
version=5.3.0-0-g54eaed1d8b56b1aa528be3bdd1877e59c56fa90c
if ! grep -q -a "$version" ./jemalloc*.o ./ctl*.o; then
    echo "embed_jemalloc.sh: $in is not jemalloc $version, which preload/jemalloc_sampling.cpp was written for" >&2
    exit 1
fi
nm --defined-only -g ./*.o | awk 'NF == 3 { print $3 " gprof_je_" $3 }' | sort -u > syms
printf '%s\n' 'secure_getenv gprof_je_secure_getenv' 'readlink gprof_je_readlink' >> syms
# jemalloc's own mutexes go to glibc directly (its public aliases), not through gprof's lock
# profiler's exported pthread_mutex_lock/unlock: a call less on every tcache fill and flush.
printf '%s\n' 'pthread_mutex_lock __pthread_mutex_lock@GLIBC_2.2.5' \
    'pthread_mutex_unlock __pthread_mutex_unlock@GLIBC_2.2.5' >> syms
for o in ./*.o; do "$objcopy" --redefine-syms=syms "$o"; done
redirect() {  # OBJECT-STEM OLD=NEW...: calls made by that object only; each must exist
    o=./$1.pic.o
    [ -f "$o" ] || o=./$1.o
    shift
    for pair in "$@"; do
        "$objcopy" --redefine-sym "$pair" "$o"
        if ! nm -u "$o" | grep -q " ${pair#*=}\$"; then
            echo "embed_jemalloc.sh: $o does not call ${pair%%=*}" >&2
            exit 1
        fi
    done
}
redirect thread_event \
    gprof_je_je_prof_sample_new_event_wait=gprof_jemalloc_sample_wait \
    gprof_je_je_prof_sample_postponed_event_wait=gprof_jemalloc_sample_wait
redirect jemalloc \
    gprof_je_je_prof_tdata_init=gprof_jemalloc_tdata_init \
    gprof_je_je_prof_tctx_create=gprof_jemalloc_tctx_create \
    gprof_je_je_prof_malloc_sample_object=gprof_jemalloc_sampled \
    gprof_je_je_large_prof_info_get=gprof_jemalloc_prof_info_get \
    gprof_je_je_prof_free_sampled_object=gprof_jemalloc_sample_freed
redirect arena \
    gprof_je_je_large_prof_info_get=gprof_jemalloc_prof_info_get \
    gprof_je_je_prof_free_sampled_object=gprof_jemalloc_sample_freed
# libm's log, exp and round: gprof's own (base/math.cpp), so that libm.so.6 is not loaded.
redirect prof log=gprof_log
redirect prof_data exp=gprof_exp round=gprof_round
redirect prof \
    gprof_je_je_prof_tctx_try_destroy=gprof_jemalloc_tctx_try_destroy \
    gprof_je_je_prof_tdata_detach=gprof_jemalloc_tdata_detach \
    gprof_je_je_malloc_mutex_init=gprof_jemalloc_prof_mutex_init \
    gprof_je_je_prof_unwind_init=gprof_jemalloc_unwind_init
rm -f "$out"
ar rcs "$out" ./*.o
