#include "dns_responder.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "berth/sdk/detached.hpp"
#include "berth/sdk/unique_fd.hpp"

namespace berth::dns {

namespace {

constexpr const char* kProcessName = "berth-dns";
constexpr const char* kDomain = ".dns.berth";

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

bool is_responder(pid_t pid) {
  std::string comm = read_text("/proc/" + std::to_string(pid) + "/comm");
  return comm.starts_with(kProcessName);
}

pid_t recorded_pid(const std::string& pid_file) {
  std::string text = read_text(pid_file);
  try {
    return text.empty() ? 0 : static_cast<pid_t>(std::stol(text));
  } catch (const std::exception&) {
    return 0;
  }
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// A container's addresses, as they go in A and AAAA records.
struct Entry {
  std::vector<std::array<uint8_t, 4>> v4;
  std::vector<std::array<uint8_t, 16>> v6;
};

class Names {
 public:
  explicit Names(std::string file) : file_(std::move(file)) {}

  // name -> addresses; re-read when the lease file changes.
  const std::map<std::string, Entry>& get() {
    struct stat st {};
    if (::stat(file_.c_str(), &st) != 0) {
      names_.clear();
      return names_;
    }
    if (st.st_mtim.tv_sec == mtime_.tv_sec && st.st_mtim.tv_nsec == mtime_.tv_nsec &&
        st.st_ino == ino_) {
      return names_;
    }
    mtime_ = st.st_mtim;
    ino_ = st.st_ino;
    names_.clear();
    auto j = nlohmann::json::parse(read_text(file_), nullptr, false);
    if (j.is_discarded() || !j.contains("leases")) {
      return names_;
    }
    for (const auto& l : j["leases"]) {
      Entry e;
      std::array<uint8_t, 4> a4{};
      std::array<uint8_t, 16> a6{};
      if (inet_pton(AF_INET, l.value("ip", "").c_str(), a4.data()) == 1) {
        e.v4.push_back(a4);
      }
      if (inet_pton(AF_INET6, l.value("ip6", "").c_str(), a6.data()) == 1) {
        e.v6.push_back(a6);
      }
      if (e.v4.empty() && e.v6.empty()) {
        continue;
      }
      std::vector<std::string> keys;
      keys.push_back(l.value("container_name", ""));
      keys.push_back(l.value("container_id", "").substr(0, 12));
      for (const auto& alias : l.value("aliases", std::vector<std::string>{})) {
        keys.push_back(alias);
      }
      for (const auto& k : keys) {
        if (!k.empty()) {
          names_[lower(k)] = e;
        }
      }
    }
    return names_;
  }

 private:
  std::string file_;
  timespec mtime_{};
  ino_t ino_ = 0;
  std::map<std::string, Entry> names_;
};

std::vector<sockaddr_in> upstreams() {
  std::vector<sockaddr_in> out;
  std::istringstream s(read_text("/etc/resolv.conf"));
  for (std::string line; std::getline(s, line);) {
    std::istringstream ls(line);
    std::string key;
    std::string ip;
    ls >> key >> ip;
    sockaddr_in sa{};
    if (key == "nameserver" && inet_pton(AF_INET, ip.c_str(), &sa.sin_addr) == 1) {
      sa.sin_family = AF_INET;
      sa.sin_port = htons(53);
      out.push_back(sa);
    }
  }
  return out;
}

// The question's name ("web.dns.berth") and the offset just past the question, or 0.
size_t parse_question(const uint8_t* p, size_t n, std::string& name, uint16_t& qtype) {
  size_t off = 12;
  while (off < n) {
    uint8_t len = p[off];
    if (len == 0) {
      ++off;
      break;
    }
    if ((len & 0xC0) != 0 || off + 1 + len > n) {
      return 0;
    }
    if (!name.empty()) {
      name += '.';
    }
    name.append(reinterpret_cast<const char*>(p + off + 1), len);
    off += 1 + len;
  }
  if (off + 4 > n) {
    return 0;
  }
  qtype = static_cast<uint16_t>(p[off] << 8 | p[off + 1]);
  return off + 4;
}

std::vector<uint8_t> forward(const uint8_t* q, size_t n) {
  for (const auto& up : upstreams()) {
    UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!s || ::sendto(s.get(), q, n, 0, reinterpret_cast<const sockaddr*>(&up), sizeof up) < 0) {
      continue;
    }
    pollfd pfd{s.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 2000) != 1) {
      continue;
    }
    std::vector<uint8_t> buf(4096);
    ssize_t r = ::recv(s.get(), buf.data(), buf.size(), 0);
    if (r > 0) {
      buf.resize(static_cast<size_t>(r));
      return buf;
    }
  }
  return {};
}

// Whether `ip` is still an address of this host (its bridge may be gone: the last container of
// another store on a shared bridge removes it, and only that store stops its own responder).
bool address_is_local(const std::string& ip) {
  bool v6 = ip.find(':') != std::string::npos;
  UniqueFd probe(::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!probe) {
    return true;  // cannot tell: keep serving
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (v6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    len = inet_pton(AF_INET6, ip.c_str(), &sa->sin6_addr) == 1 ? sizeof *sa : 0;
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    len = inet_pton(AF_INET, ip.c_str(), &sa->sin_addr) == 1 ? sizeof *sa : 0;
  }
  return len == 0 || ::bind(probe.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0 ||
         errno != EADDRNOTAVAIL;
}

[[noreturn]] void serve(int fd, const ResponderConfig& cfg) {
  Names names(cfg.lease_file);
  std::vector<uint8_t> buf(4096);
  for (;;) {
    // Idle for 2 s: still needed? A responder whose address went away ends (it would hold the
    // port on that address when the bridge comes back).
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, 2000);
    if (ready == 0) {
      if (!address_is_local(cfg.listen_ip)) {
        ::_exit(0);
      }
      continue;
    }
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    ssize_t n =
        ::recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&peer), &plen);
    if (n < 12) {
      continue;
    }
    std::string name;
    uint16_t qtype = 0;
    size_t qend = parse_question(buf.data(), static_cast<size_t>(n), name, qtype);
    if (qend == 0) {
      continue;
    }
    std::string key = lower(name);
    if (key.ends_with(".")) {
      key.pop_back();
    }
    if (key.ends_with(kDomain)) {
      key.resize(key.size() - std::char_traits<char>::length(kDomain));
    }
    const auto& table = names.get();
    auto it = table.find(key);
    std::vector<uint8_t> reply;
    if (it != table.end()) {
      reply.assign(buf.begin(), buf.begin() + static_cast<long>(qend));
      reply[2] = static_cast<uint8_t>(0x84 | (buf[2] & 0x01));  // QR, AA, RD as asked
      reply[3] = 0x80;                                          // RA, NOERROR
      reply[8] = reply[9] = reply[10] = reply[11] = 0;
      // A (1) and AAAA (28) answers; a name with none of the asked type gets NOERROR and no
      // answer, so resolvers go on to the other type.
      uint16_t count = 0;
      auto answer = [&](uint16_t type, const uint8_t* ip, uint8_t len) {
        uint8_t rr[] = {0xC0,
                        0x0C,
                        static_cast<uint8_t>(type >> 8),
                        static_cast<uint8_t>(type),
                        0,
                        1,
                        0,
                        0,
                        0,
                        60,
                        0,
                        len};
        reply.insert(reply.end(), rr, rr + sizeof rr);
        reply.insert(reply.end(), ip, ip + len);
        ++count;
      };
      if (qtype == 1) {
        for (const auto& a : it->second.v4) {
          answer(1, a.data(), 4);
        }
      } else if (qtype == 28) {
        for (const auto& a : it->second.v6) {
          answer(28, a.data(), 16);
        }
      }
      reply[6] = static_cast<uint8_t>(count >> 8);
      reply[7] = static_cast<uint8_t>(count);
    } else {
      reply = forward(buf.data(), static_cast<size_t>(n));
      if (reply.empty()) {
        reply.assign(buf.begin(), buf.begin() + static_cast<long>(qend));
        reply[2] = static_cast<uint8_t>(0x80 | (buf[2] & 0x01));
        reply[3] = 0x82;  // SERVFAIL
        reply[6] = reply[7] = reply[8] = reply[9] = reply[10] = reply[11] = 0;
      }
    }
    ::sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), plen);
  }
}

}  // namespace

Result<void> ensure_running(const ResponderConfig& cfg) {
  pid_t old = recorded_pid(cfg.pid_file);
  if (old > 0 && is_responder(old)) {
    return {};
  }
  bool v6 = cfg.listen_ip.find(':') != std::string::npos;
  UniqueFd sock(::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) {
    return fail_errno("socket", "DNS responder");
  }
  sockaddr_storage ss{};
  socklen_t sslen = 0;
  int ok = 0;
  if (v6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(cfg.port);
    ok = inet_pton(AF_INET6, cfg.listen_ip.c_str(), &sa->sin6_addr);
    sslen = sizeof *sa;
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(cfg.port);
    ok = inet_pton(AF_INET, cfg.listen_ip.c_str(), &sa->sin_addr);
    sslen = sizeof *sa;
  }
  if (ok != 1) {
    return fail(Errc::InvalidArgument, "DNS responder: invalid address " + cfg.listen_ip);
  }
  if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&ss), sslen) != 0) {
    return fail(std::move(Error::from_errno("bind DNS responder of network " + cfg.network + " to",
                                            cfg.listen_ip + ":" + std::to_string(cfg.port), errno))
                    .hint("another DNS server holds the port; set dns_bind_port in "
                          "containers.conf or create the network with --disable-dns"));
  }
  BERTH_TRY(pid_t pid, sdk::spawn_detached("DNS responder of network " + cfg.network, [&] {
              ::prctl(PR_SET_NAME, kProcessName);
              ::signal(SIGPIPE, SIG_IGN);
              ::signal(SIGTERM, SIG_DFL);
              int devnull = ::open("/dev/null", O_RDWR);
              ::dup2(devnull, 0);
              ::dup2(devnull, 1);
              ::dup2(devnull, 2);
              int fd = ::dup2(sock.get(), 3);
              ::syscall(SYS_close_range, 4, ~0U, 0);
              if (::chdir("/") != 0) {
                ::_exit(1);
              }
              serve(fd, cfg);
            }));
  std::ofstream(cfg.pid_file) << pid << "\n";
  return {};
}

Result<void> stop(const std::string& pid_file) {
  pid_t pid = recorded_pid(pid_file);
  if (pid > 0 && is_responder(pid)) {
    if (::kill(pid, SIGKILL) != 0 && errno != ESRCH) {
      return fail_errno("stop DNS responder", std::to_string(pid));
    }
  }
  ::unlink(pid_file.c_str());
  return {};
}

}  // namespace berth::dns
