// C++ helpers over gprof.h: a label guard, Go's pprof.Do for a scope.
//
//     {
//         gprof::Label request("request", id);  // pushed here, popped at the end of the scope
//         handle(id);
//     }
//
// Without gprof (the functions absent) the guard does nothing.
#ifndef GPROF_HPP
#define GPROF_HPP

#include "gprof.h"

namespace gprof {

class Label {
  public:
    // Every gprof_label_push is matched by one gprof_label_pop, whatever it returned.
    Label(const char* key, const char* value) noexcept
        : called_(gprof_label_push != nullptr),
          pushed_(called_ && gprof_label_push(key, value) == 0) {}
    ~Label() {
        if (called_ && gprof_label_pop != nullptr) gprof_label_pop();
    }
    Label(const Label&) = delete;
    Label& operator=(const Label&) = delete;

    // Whether the label is on (gprof present and the push accepted).
    bool pushed() const noexcept { return pushed_; }

  private:
    bool called_;
    bool pushed_;
};

}  // namespace gprof

#endif
