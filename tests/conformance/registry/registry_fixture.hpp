#pragma once
// Test helpers: child processes killed by pid, free loopback ports, a local docker-registry and
// the fake registries from tests/fixtures/registry, and the docker transport plugin.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "berth/sdk/plugin_file.hpp"
#include "berth/sdk/testing/conformance.hpp"
#include "berth/sdk/transport.hpp"
#include "berth/sdk/unique_fd.hpp"

namespace berth::registry::testing {

namespace fs = std::filesystem;

inline std::string fixture(const std::string& name) {
  return std::string(REGISTRY_FIXTURES) + "/" + name;
}

// A loopback port that was free a moment ago.
inline int free_port() {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(s) << "socket: " << std::strerror(errno);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  EXPECT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << std::strerror(errno);
  socklen_t len = sizeof(a);
  EXPECT_EQ(::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  return ntohs(a.sin_port);
}

inline bool port_open(int port) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return ::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
}

// A child process, killed (SIGTERM, then SIGKILL) and reaped by pid when it goes out of scope.
class Child {
 public:
  Child() = default;
  Child(const std::vector<std::string>& argv, const std::string& log) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      std::vector<char*> args;
      for (const auto& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
      }
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    EXPECT_GT(pid_, 0) << "fork: " << std::strerror(errno);
  }
  Child(Child&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
  Child& operator=(Child&& o) noexcept {
    stop();
    pid_ = std::exchange(o.pid_, -1);
    return *this;
  }
  ~Child() { stop(); }
  pid_t pid() const { return pid_; }
  bool running() { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }
  void stop() {
    if (pid_ <= 0) {
      return;
    }
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) != 0) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

// Waits until the child listens on the port; false when it died or took too long.
inline bool wait_listening(Child& c, int port) {
  for (int i = 0; i < 200; ++i) {
    if (port_open(port)) {
      return true;
    }
    if (!c.running()) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void spit(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

inline int run(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

struct RegistryOptions {
  bool tls = false;
  bool client_certs = false;  // with tls: clients must present a certificate from the test CA
  std::string htpasswd_user;  // with htpasswd_password: basic auth
  std::string htpasswd_password;
  std::string token_realm;  // token auth against this realm (the fake token server)
};

// Debian's docker-registry on 127.0.0.1:<free port>, storage in a temporary directory.
class LocalRegistry {
 public:
  explicit LocalRegistry(RegistryOptions o = {}) : opts_(std::move(o)) {}
  // Starts it; an empty string when it started, else why not.
  std::string start() {
    const auto& d = dir_.path();
    std::vector<std::string> argv{fixture("run-registry.sh"), d.string(), ""};
    if (opts_.tls || !opts_.token_realm.empty()) {
      if (run(fixture("make-ca.sh") + " " + (d / "ca").string()) != 0) {
        return "make-ca.sh failed";
      }
    }
    if (opts_.tls) {
      argv.insert(argv.end(),
                  {"--tls", (d / "ca/server.crt").string(), (d / "ca/server.key").string()});
      if (opts_.client_certs) {
        argv.insert(argv.end(), {"--client-ca", (d / "ca/ca.crt").string()});
      }
    }
    if (!opts_.htpasswd_user.empty()) {
      std::string file = (d / "htpasswd").string();
      if (run("htpasswd -Bbc " + file + " " + opts_.htpasswd_user + " " + opts_.htpasswd_password +
              " 2>/dev/null") != 0) {
        return "htpasswd failed (install apache2-utils)";
      }
      argv.insert(argv.end(), {"--htpasswd", file});
    }
    if (!opts_.token_realm.empty()) {
      argv.insert(argv.end(), {"--token", opts_.token_realm, "berth-test-issuer",
                               "berth-test-registry", (d / "ca/ca.crt").string()});
    }
    for (int attempt = 0; attempt < 3; ++attempt) {
      port_ = free_port();
      argv[2] = std::to_string(port_);
      proc_ = Child(argv, (d / "registry.log").string());
      if (wait_listening(proc_, port_)) {
        return "";
      }
      proc_.stop();
    }
    return "docker-registry did not start: " + slurp(d / "registry.log");
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  fs::path dir() const { return dir_.path(); }
  fs::path ca_dir() const { return dir_.path() / "ca"; }
  // How many requests the access log shows whose line contains `needle` ("\"PATCH /v2/x").
  long count_requests(const std::string& needle) const {
    std::istringstream in(slurp(dir_.path() / "registry.log"));
    long n = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.find(needle) != std::string::npos) {
        ++n;
      }
    }
    return n;
  }
  // Where the registry keeps a blob's bytes.
  fs::path blob_path(const std::string& digest) const {
    std::string hex = digest.substr(7);
    return dir_.path() / "storage/docker/registry/v2/blobs/sha256" / hex.substr(0, 2) / hex /
           "data";
  }

 private:
  RegistryOptions opts_;
  sdk::testing::TempDir dir_{"berth-registry-"};
  int port_ = 0;
  Child proc_;
};

// fake_registry.py in one of its modes.
class FakeRegistry {
 public:
  explicit FakeRegistry(std::string mode) : mode_(std::move(mode)) {}
  std::string start() {
    log_ = (dir_.path() / "requests.log").string();
    for (int attempt = 0; attempt < 3; ++attempt) {
      port_ = free_port();
      proc_ = Child(
          {"/usr/bin/python3", fixture("fake_registry.py"), mode_, std::to_string(port_), log_},
          (dir_.path() / "stderr.log").string());
      if (wait_listening(proc_, port_)) {
        return "";
      }
      proc_.stop();
    }
    return "fake registry did not start: " + slurp(dir_.path() / "stderr.log");
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  const std::string& log_path() const { return log_; }
  std::vector<std::string> requests() const {
    std::vector<std::string> out;
    std::istringstream in(slurp(log_));
    for (std::string line; std::getline(in, line);) {
      out.push_back(line);
    }
    return out;
  }

 private:
  std::string mode_;
  sdk::testing::TempDir dir_{"berth-fake-registry-"};
  std::string log_;
  int port_ = 0;
  Child proc_;
};

inline std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) {
    c = static_cast<char>(gen() & 0xff);
  }
  return s;
}

// A file holding `data`, open for reading from its start (what put_blob reads).
inline UniqueFd data_fd(const fs::path& dir, const std::string& data) {
  static int n = 0;
  fs::path p = dir / ("in-" + std::to_string(n++));
  spit(p, data);
  return UniqueFd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
}

}  // namespace berth::registry::testing
