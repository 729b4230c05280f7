// gprof_label_push / gprof_label_pop: Go's pprof.Do for the calling thread (record/labels.h).
#include "record/labels.h"

#include <cstring>

#include "api/gprof.h"
#include "api/misuse.h"
#include "base/reentry_guard.h"

namespace a = gprof::api;
namespace r = gprof::record;

namespace {

// Bytes of `text` up to max + 1: more than max means over-long, without reading past it.
size_t bounded_length(const char* text) {
    return strnlen(text, r::kMaxLabelText + 1);
}

}  // namespace

extern "C" int gprof_label_push(const char* key, const char* value) {
    int saved = errno;
    if (key == nullptr || value == nullptr) {
        r::push_unchanged();
        return a::misuse(a::Misuse::LabelText, EINVAL,
                         "gprof_label_push: a NULL key or value; the labels stay as they were");
    }
    size_t key_length = bounded_length(key), value_length = bounded_length(value);
    if (key_length == 0 || key_length > r::kMaxLabelText || value_length > r::kMaxLabelText) {
        r::push_unchanged();
        return a::misuse(a::Misuse::LabelText, EINVAL,
                         "gprof_label_push: an empty key, or a key or value longer than 1024 "
                         "bytes; the labels stay as they were");
    }
    gprof::base::ReentryGuard guard;
    switch (r::push_label({key, key_length}, {value, value_length})) {
        case r::LabelPushResult::Pushed:
            errno = saved;
            return 0;
        case r::LabelPushResult::TooDeep:
            return a::misuse(a::Misuse::LabelDepth, E2BIG,
                             "gprof_label_push: more than 64 nested pushes; the deeper ones "
                             "leave the labels as they were");
        case r::LabelPushResult::TableFull:
            break;
    }
    return a::misuse(a::Misuse::LabelTable, ENOMEM,
                     "gprof_label_push: gprof's table of label sets is full; new labels are "
                     "not recorded");
}

extern "C" void gprof_label_pop(void) {
    int saved = errno;
    if (!r::pop_label())
        a::misuse(a::Misuse::LabelPop, EINVAL, "gprof_label_pop with no label pushed; ignored");
    errno = saved;  // a void function: errno is the program's
}
