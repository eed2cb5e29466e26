#pragma once
// The last steps before execve, shared by a container's init and by exec: stdio, rlimits, the
// executable lookup, user and groups, capabilities, no_new_privs, seccomp.
#include <string>

#include "oci_config.hpp"
#include "seccomp.hpp"

namespace berth::runtime {

// Makes fds 0, 1, 2 the given fds (-1: /dev/null of the current mount namespace).
Result<void> setup_stdio(int in, int out, int err);
// setrlimit for each; a hard limit above this process's is clamped (and logged), since raising
// it needs CAP_SYS_RESOURCE.
Result<void> apply_rlimits(const std::vector<RlimitSpec>& rlimits);
// Finds args[0] in the process's PATH, as execvp would, from inside the container's root.
// NotFound maps to exit code 127, PermissionDenied to 126.
Result<std::string> find_executable(const ProcessSpec& process);
// Switches user and capabilities, loads seccomp, execs. Returns only on failure.
Error finalize_and_exec(const ProcessSpec& process, const std::string& executable,
                        const SeccompProgram* seccomp);
// Exit code a caller should report for a failed exec: 127 not found, 126 cannot invoke.
int exec_error_exit_code(const Error& e);

}  // namespace berth::runtime
