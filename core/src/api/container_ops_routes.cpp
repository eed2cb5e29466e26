// Container endpoints over the container module's feature areas: pause, unpause, update, stats,
// resize (the monitor's control fifo), export, changes, archive (GET/HEAD/PUT for `docker cp`)
// and commit.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "berth/container/container.hpp"
#include "berth/container/resource_ops.hpp"
#include "berth/container/service.hpp"
#include "berth/container/storage_ops.hpp"
#include "berth/engine/engine.hpp"
#include "berth/sdk/unique_fd.hpp"
#include "berth/util/fs.hpp"
#include "routes.hpp"

namespace berth::api {
namespace {

using nlohmann::json;

// /proc/stat's total CPU time in nanoseconds (Docker's system_cpu_usage) and the online CPUs.
std::pair<uint64_t, int> system_cpu() {
  std::ifstream in("/proc/stat");
  std::string line;
  uint64_t total = 0;
  int cpus = 0;
  const long hz = ::sysconf(_SC_CLK_TCK);
  while (std::getline(in, line)) {
    if (line.rfind("cpu ", 0) == 0) {
      std::istringstream f(line.substr(4));
      uint64_t v = 0;
      for (int i = 0; i < 8 && (f >> v); ++i) {  // user..steal, as Docker
        total += v;
      }
    } else if (line.rfind("cpu", 0) == 0) {
      ++cpus;
    }
  }
  return {hz > 0 ? total * (1000000000ULL / static_cast<uint64_t>(hz)) : 0, cpus};
}

json cpu_json(const container::StatsSample& s, uint64_t system, int cpus) {
  return {{"cpu_usage",
           {{"total_usage", s.cpu_nanos},
            {"percpu_usage", json::array()},
            {"usage_in_kernelmode", 0},
            {"usage_in_usermode", 0}}},
          {"system_cpu_usage", system},
          {"online_cpus", cpus},
          {"throttling_data", {{"periods", 0}, {"throttled_periods", 0}, {"throttled_time", 0}}}};
}

// Docker's stats object from two samples (prev may be null: precpu is zero).
json docker_stats(const container::StatsSample& s, const container::StatsSample* prev,
                  uint64_t system, uint64_t prev_system, int cpus) {
  json pre = prev != nullptr ? cpu_json(*prev, prev_system, cpus)
                             : json{{"cpu_usage", {{"total_usage", 0}}},
                                    {"system_cpu_usage", 0},
                                    {"online_cpus", cpus},
                                    {"throttling_data", json::object()}};
  // Docker writes UTC as "Z" (2015-01-08T22:57:31.547920715Z).
  auto ts = [](int64_t ns) {
    std::string t = container::rfc3339_nano(ns);
    if (t.ends_with("+00:00")) {
      t.replace(t.size() - 6, 6, "Z");
    }
    return t;
  };
  return {
      {"read", ts(s.read_at)},
      {"preread", prev != nullptr ? ts(prev->read_at) : "0001-01-01T00:00:00Z"},
      {"id", s.id},
      {"name", "/" + s.name},
      {"num_procs", 0},
      {"pids_stats", {{"current", s.pids}}},
      {"cpu_stats", cpu_json(s, system, cpus)},
      {"precpu_stats", pre},
      {"memory_stats", {{"usage", s.mem_usage}, {"limit", s.mem_limit}, {"stats", json::object()}}},
      {"blkio_stats",
       {{"io_service_bytes_recursive",
         json::array({{{"major", 0}, {"minor", 0}, {"op", "read"}, {"value", s.block_read}},
                      {{"major", 0}, {"minor", 0}, {"op", "write"}, {"value", s.block_write}}})}}},
      {"storage_stats", json::object()},
      {"networks",
       {{"eth0",
         {{"rx_bytes", s.net_rx},
          {"tx_bytes", s.net_tx},
          {"rx_packets", 0},
          {"tx_packets", 0},
          {"rx_errors", 0},
          {"tx_errors", 0},
          {"rx_dropped", 0},
          {"tx_dropped", 0}}}}}};
}

// The stat of a path as Docker's X-Docker-Container-Path-Stat header wants it, from the first
// header of the tar the copy produces: {name, size, mode (Go FileMode bits), mtime, linkTarget}.
std::optional<json> tar_stat(const char* h) {
  if (h[0] == '\0') {
    return std::nullopt;
  }
  auto field = [&](size_t off, size_t len) {
    std::string s(h + off, len);
    return s.substr(0, s.find('\0'));
  };
  auto octal = [&](size_t off, size_t len) -> uint64_t {
    std::string s = field(off, len);
    return s.empty() ? 0 : std::strtoull(s.c_str(), nullptr, 8);
  };
  std::string name = field(0, 100);
  std::string prefix = field(345, 155);
  if (!prefix.empty()) {
    name = prefix + "/" + name;
  }
  while (name.size() > 1 && name.back() == '/') {
    name.pop_back();
  }
  if (auto slash = name.rfind('/'); slash != std::string::npos) {
    name = name.substr(slash + 1);
  }
  char type = h[156];
  uint64_t mode = octal(100, 8) & 07777;
  if (type == '5') {
    mode |= 1ULL << 31;  // os.ModeDir
  } else if (type == '2') {
    mode |= 1ULL << 27;  // os.ModeSymlink
  }
  int64_t mtime = static_cast<int64_t>(octal(136, 12));
  return json{{"name", name},
              {"size", static_cast<int64_t>(octal(124, 12))},
              {"mode", mode},
              {"mtime", container::rfc3339_nano(mtime * 1000000000LL)},
              {"linkTarget", field(157, 100)}};
}

std::string base64(std::string_view in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) |
                 static_cast<uint8_t>(in[i + 2]);
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += k[(v >> 6) & 63];
    out += k[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8);
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += k[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool read_full(int fd, char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      return false;
    }
    got += static_cast<size_t>(r);
  }
  return true;
}

// A copy out of the container running on a thread into a pipe, for GET/HEAD archive.
struct CopyOut {
  std::thread worker;
  UniqueFd read_end;
  Result<void> result;
  ~CopyOut() {
    read_end.reset();  // a writer blocked on the pipe fails with EPIPE
    if (worker.joinable()) {
      worker.join();
    }
  }
};

}  // namespace

Result<ContainerRef> find_container(engine::Engine& eng, const std::string& name_or_id) {
  BERTH_TRY(auto j, container::inspect(eng, name_or_id, false));
  ContainerRef f;
  f.id = j.value("Id", name_or_id);
  f.name = j.value("Name", "");
  f.status = j["State"].value("Status", "");
  f.tty = j.contains("Config") && jbool(j["Config"], "Tty", false);
  f.monitor_pid = j["State"].value("ConmonPid", 0);
  return f;
}

std::expected<ContainerRef, Response> lookup_container(const ServiceContext& ctx,
                                                       const std::string& name, bool strict) {
  auto eng = ctx.open_engine();
  if (!eng) {
    return std::unexpected(error_response(eng.error()));
  }
  auto f = find_container(**eng, name);
  if (!f) {
    return std::unexpected(object_error(f.error(), ObjectKind::Container, name, strict));
  }
  return *f;
}

void add_container_ops_routes(Router& r, const std::shared_ptr<ServiceContext>& ctx) {
  // pause and unpause: the same checks, the other state.
  auto pause_route = [ctx](bool pause) {
    return [ctx, pause](Request& req) -> Response {
      API_ENGINE(eng);
      const auto& id = req.params["id"];
      auto f = find_container(eng, id);
      if (!f) {
        return object_error(f.error(), ObjectKind::Container, id, true);
      }
      if (f->status != (pause ? "running" : "paused")) {
        return error_response(409,
                              "Container " + id + (pause ? " is not running" : " is not paused"));
      }
      auto res = pause ? container::pause(eng, f->id) : container::unpause(eng, f->id);
      if (!res) {
        return object_error(res.error(), ObjectKind::Container, id, true);
      }
      return empty_response(204);
    };
  };
  r.add("POST", "/containers/{id}/pause", pause_route(true));
  r.add("POST", "/containers/{id}/unpause", pause_route(false));

  r.add("POST", "/containers/{id}/update", [ctx](Request& req) -> Response {
    auto body = req.json_body();
    if (!body) {
      return error_response(body.error());
    }
    if (!body->is_object()) {
      return error_response(400, "the update config must be a JSON object");
    }
    const json& b = *body;
    auto num = [&](const char* k) -> int64_t {
      return b.contains(k) && b[k].is_number() ? b[k].get<int64_t>() : 0;
    };
    container::UpdateOptions o;
    if (num("Memory") > 0) {
      o.memory = num("Memory");
    }
    if (num("MemorySwap") != 0) {
      o.memory_swap = num("MemorySwap");
    }
    if (num("MemoryReservation") > 0) {
      o.memory_reservation = num("MemoryReservation");
    }
    if (num("NanoCpus") > 0) {
      o.cpus = static_cast<double>(num("NanoCpus")) / 1e9;
    } else if (num("CpuQuota") > 0) {
      int64_t period = num("CpuPeriod") > 0 ? num("CpuPeriod") : 100000;
      o.cpus = static_cast<double>(num("CpuQuota")) / static_cast<double>(period);
    }
    if (num("CpuShares") > 0) {
      o.cpu_shares = static_cast<uint64_t>(num("CpuShares"));
    }
    if (b.contains("CpusetCpus") && b["CpusetCpus"].is_string() &&
        !b["CpusetCpus"].get<std::string>().empty()) {
      o.cpuset_cpus = b["CpusetCpus"].get<std::string>();
    }
    if (b.contains("CpusetMems") && b["CpusetMems"].is_string() &&
        !b["CpusetMems"].get<std::string>().empty()) {
      o.cpuset_mems = b["CpusetMems"].get<std::string>();
    }
    if (num("PidsLimit") != 0) {
      o.pids_limit = num("PidsLimit");
    }
    if (num("BlkioWeight") > 0) {
      o.blkio_weight = static_cast<uint16_t>(num("BlkioWeight"));
    }
    json warnings = json::array();
    if (b.contains("RestartPolicy") && b["RestartPolicy"].is_object() &&
        !jstr(b["RestartPolicy"], "Name").empty()) {
      const auto& rp = b["RestartPolicy"];
      std::string policy = jstr(rp, "Name");
      const int64_t retries =
          rp.contains("MaximumRetryCount") && rp["MaximumRetryCount"].is_number_integer()
              ? rp["MaximumRetryCount"].get<int64_t>()
              : 0;
      if (policy == "on-failure" && retries > 0) {
        policy += ":" + std::to_string(retries);
      } else if (policy != "on-failure" && retries > 0) {
        return error_response(
            400, "maximum retry count cannot be used with restart policy '" + policy + "'");
      }
      o.restart_policy = policy;
    }
    API_ENGINE(eng);
    if (auto res = container::update_resources(eng, req.params["id"], o); !res) {
      return object_error(res.error(), ObjectKind::Container, req.params["id"], true);
    }
    return json_response(200, {{"Warnings", warnings}});
  });

  r.add("GET", "/containers/{id}/stats", [ctx](Request& req) -> Response {
    auto found = lookup_container(*ctx, req.params["id"], true);
    if (!found) {
      return found.error();
    }
    const std::string id = found->id;
    const bool stream = req.q_bool("stream", true);
    const bool one_shot = req.q_bool("one-shot");
    Response resp;
    resp.chunked = true;
    resp.stream = [ctx, id, stream, one_shot](RawConnection& conn) {
      auto eng = ctx->open_engine();
      if (!eng) {
        send_all(conn.fd, json{{"message", eng.error().message()}}.dump() + "\n");
        return;
      }
      std::optional<container::StatsSample> prev;
      uint64_t prev_system = 0;
      for (int round = 0;; ++round) {
        auto s = container::stats(**eng, {id});
        auto [system, cpus] = system_cpu();
        json out;
        if (!s || s->empty()) {
          // Not running (any more): Docker sends zeroed stats once and ends.
          container::StatsSample z;
          z.id = id;
          out = docker_stats(z, nullptr, system, 0, cpus);
        } else {
          out = docker_stats(s->front(), prev ? &*prev : nullptr, system, prev_system, cpus);
        }
        // A one-off reading without one-shot has a precpu: take a second sample first.
        const bool first_of_pair = !stream && !one_shot && round == 0 && s && !s->empty();
        if (!first_of_pair && !send_all(conn.fd, out.dump() + "\n")) {
          return;
        }
        if (!s || s->empty() || (!stream && !first_of_pair)) {
          return;
        }
        prev = s->front();
        prev_system = system;
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    };
    return resp;
  });

  // A tty container's size: the monitor's control fifo ("1 ROWS COLS").
  r.add("POST", "/containers/{id}/resize", [ctx](Request& req) -> Response {
    int h = std::atoi(req.q_or("h", "0").c_str());
    int w = std::atoi(req.q_or("w", "0").c_str());
    if (h <= 0 || w <= 0 || h > 65535 || w > 65535) {
      return error_response(400, "resize needs h and w between 1 and 65535");
    }
    API_ENGINE(eng);
    auto f = find_container(eng, req.params["id"]);
    if (!f) {
      return object_error(f.error(), ObjectKind::Container, req.params["id"], true);
    }
    if (f->status == "exited" || f->status == "stopped") {
      // The process has ended: nothing to size. Docker answers 409 here, and the docker CLI,
      // which resizes right after every start, then prints "failed to resize tty" under the
      // output of a `run -t` whose process ended first (a busy host, a short command). The
      // size at start is the spec's (ConsoleSize), so nothing is lost.
      return json_response(200, json::object());
    }
    if (f->status != "running" && f->status != "paused") {
      return error_response(409, "Container " + req.params["id"] + " is not running");
    }
    if (!f->tty) {
      return json_response(200, json::object());  // nothing to size, as Docker
    }
    std::string ctl = container::run_dir(eng.runroot(), f->id) + "/ctl";
    UniqueFd fd(::open(ctl.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    if (!fd && (errno == ENOENT || errno == ENXIO)) {
      return json_response(200, json::object());  // its monitor just ended with it: as above
    }
    if (!fd) {
      return error_response(
          500, "resize " + req.params["id"] + ": open " + ctl + ": " + std::strerror(errno));
    }
    std::string msg = "1 " + std::to_string(h) + " " + std::to_string(w) + "\n";
    if (::write(fd.get(), msg.data(), msg.size()) != static_cast<ssize_t>(msg.size())) {
      return error_response(
          500, "resize " + req.params["id"] + ": write " + ctl + ": " + std::strerror(errno));
    }
    return json_response(200, json::object());
  });

  r.add("GET", "/containers/{id}/export", [ctx](Request& req) -> Response {
    auto found = lookup_container(*ctx, req.params["id"], true);
    if (!found) {
      return found.error();
    }
    const std::string id = found->id;
    Response resp;
    resp.content_type = "application/x-tar";
    resp.stream = [ctx, id](RawConnection& conn) {
      if (auto eng = ctx->open_engine()) {
        (void)container::export_rootfs(**eng, id, conn.fd);
      }
    };
    return resp;
  });

  r.add("GET", "/containers/{id}/changes", [ctx](Request& req) -> Response {
    API_ENGINE(eng);
    auto ch = container::diff(eng, req.params["id"]);
    if (!ch) {
      return object_error(ch.error(), ObjectKind::Container, req.params["id"], true);
    }
    json out = json::array();
    for (const auto& c : *ch) {
      int kind = c.kind == sdk::Change::Kind::Modified ? 0
                 : c.kind == sdk::Change::Kind::Added  ? 1
                                                       : 2;
      out.push_back({{"Path", c.path}, {"Kind", kind}});
    }
    return json_response(200, out.empty() ? json(nullptr) : out);
  });

  // GET and HEAD archive: the tar of a path (HEAD only its stat header).
  auto archive_out = [ctx](Request& req, bool head) -> Response {
    auto path = req.q_or("path", "");
    if (path.empty()) {
      return error_response(400, "the path to copy must be given: path=...");
    }
    auto found = lookup_container(*ctx, req.params["id"], true);
    if (!found) {
      return found.error();
    }
    const std::string id = found->id;
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
      return error_response(500, std::string("pipe: ") + std::strerror(errno));
    }
    auto job = std::make_shared<CopyOut>();
    job->read_end.reset(p[0]);
    int w = p[1];
    job->worker = std::thread([ctx, id, path, w, job = job.get()] {
      auto eng = ctx->open_engine();
      if (!eng) {
        job->result = fail(std::move(eng).error());
      } else {
        container::CopyOptions co;
        co.source = id + ":" + path;
        co.destination = "-";
        co.stdout_fd = w;
        job->result = container::copy(**eng, co);
      }
      ::close(w);
    });
    char first[512];
    if (!read_full(job->read_end.get(), first, sizeof(first))) {
      job->read_end.reset();
      job->worker.join();
      if (!job->result) {
        const auto& e = job->result.error();
        if (e.code() == Errc::NotFound) {
          return error_response(
              404, "Could not find the file " + path + " in container " + req.params["id"]);
        }
        return error_response(e);
      }
      return error_response(
          500, "copy " + path + " out of " + req.params["id"] + ": the archive is empty");
    }
    auto st = tar_stat(first);
    Response resp;
    resp.content_type = "application/x-tar";
    if (st) {
      resp.headers.emplace_back("X-Docker-Container-Path-Stat", base64(st->dump()));
    }
    if (head) {
      return resp;  // `job` ends the copy (EPIPE) when it goes
    }
    resp.stream = [job, first = std::string(first, sizeof(first))](RawConnection& conn) {
      if (!send_all(conn.fd, first)) {
        return;
      }
      char buf[65536];
      for (;;) {
        ssize_t n = ::read(job->read_end.get(), buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
          continue;
        }
        if (n <= 0 || !send_all(conn.fd, std::string_view(buf, static_cast<size_t>(n)))) {
          return;
        }
      }
    };
    return resp;
  };
  r.add("GET", "/containers/{id}/archive",
        [archive_out](Request& req) { return archive_out(req, false); });
  r.add("HEAD", "/containers/{id}/archive",
        [archive_out](Request& req) { return archive_out(req, true); });

  r.add("PUT", "/containers/{id}/archive", [ctx](Request& req) -> Response {
    auto path = req.q_or("path", "");
    if (path.empty()) {
      return error_response(400, "the destination path must be given: path=...");
    }
    API_ENGINE(eng);
    auto f = find_container(eng, req.params["id"]);
    if (!f) {
      return object_error(f.error(), ObjectKind::Container, req.params["id"], true);
    }
    UniqueFd in;
    if (!req.body_file.empty()) {
      in.reset(::open(req.body_file.c_str(), O_RDONLY | O_CLOEXEC));
    } else {
      // A small body arrived in memory: hand it over through a file of the spool.
      std::string tmp = ctx->options().spool_dir + "/archive-" + f->id.substr(0, 12) + "-" +
                        std::to_string(::gettid());
      (void)util::make_dirs(ctx->options().spool_dir, 0700);
      if (auto wr = util::write_file_atomic(tmp, req.body, 0600); !wr) {
        return error_response(wr.error());
      }
      in.reset(::open(tmp.c_str(), O_RDONLY | O_CLOEXEC));
      ::unlink(tmp.c_str());
    }
    if (!in) {
      return error_response(500, "open the uploaded archive: " + std::string(std::strerror(errno)));
    }
    container::CopyOptions co;
    co.source = "-";
    co.destination = f->id + ":" + path;
    co.stdin_fd = in.get();
    // Docker's defaults: the tar's owners are kept, a directory may replace a file and back.
    co.chown_to_user = req.q_bool("copyUIDGID");
    co.overwrite = !req.q_bool("noOverwriteDirNonDir");
    if (auto res = container::copy(eng, co); !res) {
      if (res.error().code() == Errc::NotFound) {
        return error_response(404, res.error().message());
      }
      return error_response(res.error());
    }
    return json_response(200, json::object());
  });

  r.add("POST", "/commit", [ctx](Request& req) -> Response {
    auto ctr = req.q_or("container", "");
    if (ctr.empty()) {
      return error_response(400, "the container to commit must be given: container=...");
    }
    container::CommitOptions o;
    auto repo = req.q_or("repo", "");
    auto tag = req.q_or("tag", "");
    if (!repo.empty()) {
      o.reference = repo + (tag.empty() ? "" : ":" + tag);
    }
    o.message = req.q_or("comment", "");
    o.author = req.q_or("author", "");
    o.pause = req.q_bool("pause", true);
    o.format = "docker";
    o.changes = req.q_all("changes");
    API_ENGINE(eng);
    auto f = find_container(eng, ctr);
    if (!f) {
      return object_error(f.error(), ObjectKind::Container, ctr, true);
    }
    // pause needs a running container; a stopped one is committed as it is.
    if (f->status != "running") {
      o.pause = false;
    }
    auto id = container::commit(eng, f->id, o);
    if (!id) {
      return error_response(id.error());
    }
    return json_response(201, {{"Id", sha256_id(*id)}});
  });
}

}  // namespace berth::api
