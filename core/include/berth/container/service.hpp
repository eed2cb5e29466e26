#pragma once
// The container commands as library functions. The CLI and the API server call these. Each takes
// the Engine (config, store, plugins); failures whose cause is the container's executable carry
// an exit code through exit_code_for().
#include <sys/types.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "berth/container/container.hpp"
#include "berth/sdk/result.hpp"
#include "berth/sdk/unique_fd.hpp"

namespace berth::engine {
class Engine;
}

namespace berth::container {

// Podman's exit code for an error: 127 command not found, 126 cannot invoke, else 125.
int exit_code_for(const Error& e);

struct CreateResult {
  std::string id;
  std::vector<std::string> warnings;
};
// Progress lines of a pull that create/run makes ("Trying to pull ...", "Copying blob ...
// done"), which Podman prints on stderr.
using PullProgress = std::function<void(const std::string& line)>;

// Resolves the image under opts.pull (missing: pull when not in the store; always; newer: pull,
// falling back to the local image when the pull fails; never), makes the read-write layer,
// writes the spec and the record, and starts the monitor, which creates the container in the
// runtime and leaves it waiting for start. opts.restart_policy: "no", "on-failure[:N]",
// "always", "unless-stopped" (not with --rm).
Result<CreateResult> create(engine::Engine& eng, CreateOptions opts, bool replace = false,
                            const PullProgress& progress = {});

// Starts a created container (the monitor is waiting); an exited one gets a new monitor first.
Result<void> start(engine::Engine& eng, const std::string& name_or_id);

// `podman init`: an exited (or never started) container gets a new monitor that creates it in
// the runtime and waits for start; a created one is left as it is.
Result<void> init(engine::Engine& eng, const std::string& name_or_id);

// How an attached client behaves.
struct AttachOptions {
  bool stdin = false;       // forward our stdin
  bool tty = false;         // the container has a terminal: raw mode and resizes
  bool sig_proxy = true;    // forward signals to the container (no tty)
  std::string detach_keys;  // "ctrl-p,ctrl-q"; "" disables
  int in_fd = 0;
  int out_fd = 1;
  int err_fd = 2;
  // Called once the attach socket is connected (run/start start the container here).
  std::function<Result<void>()> on_attached;
};
// Result of an attach: the container's exit code, or detached.
struct AttachResult {
  bool detached = false;
  int exit_code = 0;
};
Result<AttachResult> attach(engine::Engine& eng, const std::string& name_or_id,
                            const AttachOptions& opts);

// run = create + (attach) + start. Returns the exit code to pass through (0 for -d).
struct RunOptions {
  CreateOptions create;
  bool detach = false;
  bool replace = false;
  bool sig_proxy = true;
  std::string cidfile;
  // Called once created, with the id (printed with -d) and create's warnings (printed on stderr).
  std::function<void(const CreateResult& created)> on_created;
  PullProgress pull_progress;
  // With --rm in the foreground this process removes the container when it exits; the monitor
  // then skips its own cleanup process (it runs it if this process dies first).
  bool remove_here = true;
};
Result<int> run(engine::Engine& eng, RunOptions opts);

// SIGTERM (or the stop signal; `signal` overrides it), SIGKILL after `timeout` seconds (nullopt:
// the container's).
Result<void> stop(engine::Engine& eng, const std::string& name_or_id,
                  std::optional<uint32_t> timeout, std::optional<int> signal = std::nullopt);
Result<void> restart(engine::Engine& eng, const std::string& name_or_id,
                     std::optional<uint32_t> timeout, std::optional<int> signal = std::nullopt);
Result<void> kill(engine::Engine& eng, const std::string& name_or_id, int signal);
struct RemoveOptions {
  bool force = false;
  bool volumes = false;
  std::optional<uint32_t> timeout;
};
Result<void> remove(engine::Engine& eng, const std::string& name_or_id, const RemoveOptions& o);
// `rm --depend`: the containers that depend on this one (--network container:X,
// --volumes-from X), recursively, then the container; returns the ids removed in that order.
Result<std::vector<std::string>> remove_with_dependents(engine::Engine& eng,
                                                        const std::string& name_or_id,
                                                        const RemoveOptions& o);
// Unmounts the rootfs and releases the runtime state of an exited container; with `rm`, removes
// it. Called by berth-monitor when the container exits. A container gone already is fine.
// Then applies the restart policy: after a back-off (100 ms doubling, capped at 10 s) it starts
// the container again (RestartCount + 1) unless the user stopped or removed it meanwhile.
Result<void> cleanup(engine::Engine& eng, const std::string& name_or_id, bool rm);

// Waits until the container reaches one of `conditions` ("stopped"/"exited", "running",
// "created"); returns its exit code (-1 for non-exit conditions).
Result<int> wait(engine::Engine& eng, const std::string& name_or_id,
                 const std::vector<std::string>& conditions);

// ps: `podman ps --format json`-shaped rows.
struct ListOptions {
  bool all = false;
  bool size = false;
  int last = -1;  // -n/-l
  std::vector<std::string> filters;
  std::string sort = "created";
};
Result<nlohmann::json> list(engine::Engine& eng, const ListOptions& opts);
// A ps filter applied to one row (exposed for tests): "name=foo", "status=exited", ...
Result<bool> filter_matches(
    const nlohmann::json& row, const std::string& filter,
    const std::function<std::optional<int64_t>(const std::string&)>& created_of);

Result<nlohmann::json> inspect(engine::Engine& eng, const std::string& name_or_id, bool size);
Result<bool> exists(engine::Engine& eng, const std::string& name_or_id);
Result<std::vector<std::string>> prune(engine::Engine& eng);
Result<void> rename(engine::Engine& eng, const std::string& name_or_id,
                    const std::string& new_name);
// `podman top`: the rows (titles first) of the container's processes as the container sees them,
// one column per format descriptor ("user", "pid", "%C", ... or comma-joined "pid,args"; see
// top_descriptors()); none: USER PID PPID %CPU ELAPSED TTY TIME COMMAND. When an argument is no
// descriptor, the arguments are ps(1) options (top_ps). Conflict when the container does not run.
Result<std::vector<std::vector<std::string>>> top(engine::Engine& eng,
                                                  const std::string& name_or_id,
                                                  const std::vector<std::string>& descriptors = {});
// `docker top` and GET /containers/{id}/top: the host's ps(1) run with `ps_args` (none: -ef),
// its rows (titles first) kept for the container's processes (host pids), the last column (the
// command) with its spaces. A column other than pid headed PID is refused, as Docker does.
Result<std::vector<std::vector<std::string>>> top_ps(engine::Engine& eng,
                                                     const std::string& name_or_id,
                                                     const std::vector<std::string>& ps_args);
// The format descriptors top() knows, sorted.
std::vector<std::string> top_descriptors();

struct LogsOptions {
  bool follow = false;
  std::optional<int64_t> since;  // unix nanos
  std::optional<int64_t> until;
  int64_t tail = -1;
  bool timestamps = false;
  bool names = false;
  int out_fd = 1;
  int err_fd = 2;
};
Result<void> logs(engine::Engine& eng, const std::vector<std::string>& names_or_ids,
                  const LogsOptions& opts);
// The logs of some containers, opened: what they hold when opened, and what is written to them
// later, stays readable if the containers are removed before it is read. docker-py's run() asks
// for the log, waits for the exit, removes the container and only then reads the answer.
struct OpenedLogs;
Result<std::shared_ptr<OpenedLogs>> open_logs(engine::Engine& eng,
                                              const std::vector<std::string>& names_or_ids);
// Writes opened logs as `opts` asks (once each: a second call has nothing more to write from
// before the first's end).
Result<void> write_logs(engine::Engine& eng, OpenedLogs& logs, const LogsOptions& opts);

struct ExecOptions {
  std::vector<std::string> command;
  bool interactive = false;
  bool tty = false;
  bool detach = false;
  bool privileged = false;
  std::vector<std::string> env;
  std::string user;
  std::string workdir;
  std::string detach_keys;
  // With tty: the pty's size when the process starts (rows, columns); 0: the size of this
  // process's terminal on stdout, if it has one.
  unsigned short console_height = 0;
  unsigned short console_width = 0;
};
// Returns the process's exit code (0 with detach).
Result<int> exec(engine::Engine& eng, const std::string& name_or_id, const ExecOptions& opts);
// The terminal of a running `berth exec -t` process (a pidfd for it and its pid): a duplicate of
// the pty master it relays, to resize the exec session's terminal from another process (the API
// service's exec resize). NotFound while the process has no terminal yet: the runtime hands it
// over just after the exec starts.
Result<UniqueFd> exec_terminal(int exec_pidfd, pid_t exec_pid);

// "ctrl-p,ctrl-q" -> the byte sequence; "" -> none.
Result<std::string> parse_detach_keys(const std::string& keys);
// --since/--until values: RFC 3339, unix seconds, or a duration before now ("10m", "1h").
std::optional<int64_t> parse_log_time_arg(const std::string& v);

// All records (for name resolution in the CLI and `rm -a`).
Result<std::vector<ContainerRecord>> records(engine::Engine& eng);

}  // namespace berth::container
