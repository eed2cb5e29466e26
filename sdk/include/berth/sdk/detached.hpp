#pragma once
// A helper process detached from the caller (a DNS responder, a port relay, slirp4netns): double
// fork, so that it has its own session and is re-parented away from a short-lived berth process.
#include <sys/types.h>

#include <functional>
#include <string>

#include "berth/sdk/result.hpp"

namespace berth::sdk {

// Runs `body` in a grandchild of the caller, in a new session, and returns the grandchild's pid
// once it exists (the intermediate child is reaped). `body` must not return: it execs or _exits
// (a return ends the process with 127). `what` names the helper in errors.
Result<pid_t> spawn_detached(const std::string& what, const std::function<void()>& body);

}  // namespace berth::sdk
