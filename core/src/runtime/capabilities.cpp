#include "capabilities.hpp"

#include <sys/prctl.h>

#include <algorithm>

namespace berth::runtime {
namespace {

int last_cap() {
  int last = CAP_LAST_CAP;
  FILE* f = std::fopen("/proc/sys/kernel/cap_last_cap", "re");
  if (f) {
    if (std::fscanf(f, "%d", &last) != 1) {
      last = CAP_LAST_CAP;
    }
    std::fclose(f);
  }
  return last;
}

bool has(const std::vector<cap_value_t>& set, cap_value_t c) {
  return std::find(set.begin(), set.end(), c) != set.end();
}

class CapState {
 public:
  CapState() : caps_(cap_init()) {}
  ~CapState() {
    if (caps_) {
      cap_free(caps_);
    }
  }
  CapState(const CapState&) = delete;
  CapState& operator=(const CapState&) = delete;
  cap_t get() const { return caps_; }

 private:
  cap_t caps_;
};

Result<void> set_flag(cap_t caps, cap_flag_t flag, const std::vector<cap_value_t>& values) {
  if (values.empty()) {
    return {};
  }
  if (cap_set_flag(caps, flag, static_cast<int>(values.size()), values.data(), CAP_SET) != 0) {
    return fail_errno("cap_set_flag", "");
  }
  return {};
}

}  // namespace

Result<void> drop_bounding_set(const CapabilitySpec& caps) {
  if (!caps.present) {
    return {};
  }
  const int last = last_cap();
  for (int c = 0; c <= last; ++c) {
    if (!has(caps.bounding, c) && cap_drop_bound(c) != 0 && errno != EINVAL) {
      return fail_errno("drop capability from the bounding set", cap_to_name(c));
    }
  }
  return {};
}

Result<void> apply_capabilities(const CapabilitySpec& caps) {
  if (!caps.present) {
    return {};
  }
  CapState state;
  if (!state.get()) {
    return fail_errno("cap_init", "");
  }
  BERTH_TRYV(set_flag(state.get(), CAP_EFFECTIVE, caps.effective));
  BERTH_TRYV(set_flag(state.get(), CAP_PERMITTED, caps.permitted));
  BERTH_TRYV(set_flag(state.get(), CAP_INHERITABLE, caps.inheritable));
  if (cap_set_proc(state.get()) != 0) {
    return fail_errno("set process capabilities", "");
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return fail_errno("clear ambient capabilities", "");
  }
  for (cap_value_t c : caps.ambient) {
    if (cap_set_ambient(c, CAP_SET) != 0) {
      return fail_errno("raise ambient capability", cap_to_name(c));
    }
  }
  return {};
}

}  // namespace berth::runtime
