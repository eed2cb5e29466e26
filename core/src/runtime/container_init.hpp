#pragma once
// What runs in the clone()d child until execve: the container's init setup.
#include "oci_config.hpp"
#include "seccomp.hpp"

namespace berth::runtime {

struct InitContext {
  const ContainerSpec* spec = nullptr;
  int sync_fd = -1;     // the child's end of the sync socketpair (close-on-exec)
  int fifo_fd = -1;     // O_PATH fd of exec.fifo when create waits for start
  int console_fd = -1;  // connected console socket when process.terminal
  int stdio[3] = {-1, -1, -1};
  const SeccompProgram* seccomp = nullptr;
  // Two stages (a user namespace, or a pid namespace to join): the clone()d child joins the
  // namespaces given by path as the host's root, makes the user namespace (the runtime writes
  // its maps), unshares the rest and clone()s the init with CLONE_PARENT, so that the
  // namespaces are owned by the container's user namespace and the init is pid 1 of its pid
  // namespace (or a member of the one joined). The first stage reports the init's pid and exits.
  bool two_stage = false;
};

// Whether `spec` needs the two-stage create.
bool needs_two_stage(const ContainerSpec& spec);

// Sets up the container and execs its process; never returns. Errors go to the parent over the
// sync socket, and to stderr when nobody listens any more.
[[noreturn]] void container_init(const InitContext& ctx);

// Common to init and exec: default signal dispositions, an empty signal mask, every inherited fd
// above 2 marked close-on-exec.
void reset_process_state();

}  // namespace berth::runtime
