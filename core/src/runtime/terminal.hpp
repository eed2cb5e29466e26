#pragma once
// process.terminal: a pty opened inside the container, its master sent to the console socket
// (SCM_RIGHTS, as runc's --console-socket), its slave made the controlling terminal and stdio.
#include <string>

#include "berth/sdk/result.hpp"
#include "berth/sdk/unique_fd.hpp"

namespace berth::runtime {

// Connects to the console socket (runtime side, before clone).
Result<UniqueFd> connect_console_socket(const std::string& path);
// Child side, after /dev/pts is mounted and the root pivoted: opens /dev/ptmx, sends the master
// over `socket_fd`, makes the slave the controlling terminal and fds 0-2. When `console_path` is
// set (container init), the slave is also bind-mounted there (/dev/console). A non-zero
// `rows`/`cols` (process.consoleSize) is the pty's size before the process runs, so that it never
// sees another one before its client's first resize.
Result<void> setup_terminal(int socket_fd, const char* console_path, unsigned short rows = 0,
                            unsigned short cols = 0);
// Sends `fd` over the unix socket `socket_fd`.
Result<void> send_fd(int socket_fd, int fd, const std::string& name);
// Receives one fd (tests and the monitor use it).
Result<UniqueFd> receive_fd(int socket_fd);

}  // namespace berth::runtime
