#pragma once
// Messages between the runtime and the container's init over a SOCK_SEQPACKET socketpair.
// The child's end is close-on-exec: EOF after "ready" means execve succeeded.
#include <sys/types.h>

#include <string>
#include <string_view>

#include "berth/sdk/result.hpp"

namespace berth::runtime {

// Userns: the first stage of a two-stage create has its user namespace and waits for its maps.
enum class SyncType : int32_t { Go = 1, Ready = 2, Error = 3, Pid = 4, Userns = 5 };

struct SyncMessage {
  SyncType type = SyncType::Go;
  int32_t code = 0;  // Errc for Error, pid for Pid
  int32_t sys_errno = 0;
  char text[1024] = {};
};

// Returns false when the write failed (the peer is gone); used in the child where nothing more
// can be done about it.
bool sync_send(int fd, SyncType type, int32_t code = 0, int32_t sys_errno = 0,
               std::string_view text = {});
bool sync_send_error(int fd, const Error& error);
// Reads one message; an EOF gives nullopt-like Error with code Cancelled.
Result<SyncMessage> sync_recv(int fd);
Error sync_to_error(const SyncMessage& m);

}  // namespace berth::runtime
