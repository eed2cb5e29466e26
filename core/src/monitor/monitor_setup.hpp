#pragma once
// The first half of berth-monitor, run in a child of the CLI (or of `berth container
// monitor-setup` when the caller has threads): it double-forks away, becomes the container's
// sub-reaper, binds the attach socket and the control fifo, creates the container through the
// runtime with its stdio, then execs the small berth-monitor program that holds that stdio for
// the container's life. Heavy code (the runtime, seccomp, plugins) thus never stays resident:
// the long-lived process is a static libc program (see monitor.cpp).
#include <string>

#include "berth/sdk/runtime.hpp"

namespace berth::monitor {

// Runs in a freshly forked child; never returns. `monitor_json` is the monitor.json the CLI
// wrote ({"id", "runtime", "runtime_path", "run_root", "bundle", "dir", "tty", "stdin",
// "log_driver", ...}); `runtime` is the runtime to create with (nullptr: made from the config,
// the runtime-oci plugin through the plugin search path); `report_fd` receives one JSON line
// ({"pid", "monitor_pid"} or {"error", "code"}), written by berth-monitor once it runs, so a
// report means the container is held. `monitor_bin` is the berth-monitor executable.
[[noreturn]] void setup_and_exec(const std::string& monitor_json, sdk::Runtime* runtime,
                                 int report_fd, const std::string& monitor_bin);

}  // namespace berth::monitor
