// The HTTP side of the API service: listening (unix, loopback tcp, systemd socket activation),
// one coroutine per connection on a single I/O thread, handlers on a worker pool, streams and
// hijacked connections on threads of their own, limits and timeouts so that a slow or hostile
// client only ever hurts its own connection.
// clang-format off
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>
// clang-format on
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <thread>
#include <utility>

#include "berth/api/service.hpp"
#include "berth/engine/engine.hpp"
#include "berth/sdk/unique_fd.hpp"
#include "berth/util/digest.hpp"
#include "berth/util/fs.hpp"
#include "berth/util/log.hpp"
#include "routes.hpp"

namespace berth::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;

std::string default_uri() {
  if (::geteuid() == 0) {
    return "unix:///run/berth/berth.sock";
  }
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  std::string dir = xdg != nullptr && *xdg != '\0' ? std::string(xdg)
                                                   : "/run/user/" + std::to_string(::geteuid());
  return "unix://" + dir + "/berth/berth.sock";
}

namespace {

std::string server_header() {
  return std::string("Berth/") + BERTH_VERSION + " (linux)";
}

void common_headers(std::string& head) {
  head += "Api-Version: " + std::string(kApiVersion) + "\r\n";
  head += "Docker-Experimental: false\r\n";
  head += "Ostype: linux\r\n";
  head += "Server: " + server_header() + "\r\n";
}

// A complete answer for the cases where the service closes the connection after it.
std::string raw_error(int status, std::string_view reason, std::string_view message) {
  std::string body = "{\"message\":\"" + std::string(message) + "\"}\n";
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
         "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Relays what a stream writes into `from` to the client on `to` in HTTP chunks until `from`
// ends, then sends the last chunk. A client that hangs up (or a failed send) closes `from`, so
// the stream's next write fails and it ends.
void relay_chunked(UniqueFd from, int to) {
  char buf[65536];
  for (;;) {
    // A client that has gone (HUP); one that only shut its side for writing still reads.
    pollfd p[2] = {{from.get(), POLLIN, 0}, {to, 0, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    if ((p[1].revents & (POLLHUP | POLLERR)) != 0) {
      return;
    }
    if (p[0].revents == 0) {
      continue;
    }
    ssize_t n = ::read(from.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      (void)send_all(to, "0\r\n\r\n");
      return;
    }
    char size[24];
    int len = std::snprintf(size, sizeof(size), "%zx\r\n", static_cast<size_t>(n));
    std::string chunk(size, static_cast<size_t>(len));
    chunk.append(buf, static_cast<size_t>(n));
    chunk += "\r\n";
    if (!send_all(to, chunk)) {
      return;
    }
  }
}

// Uploads routed to a file instead of memory.
bool is_upload(const std::string& method, const std::string& pattern) {
  return (method == "POST" && (pattern == "/images/load" || pattern == "/libpod/images/load" ||
                               pattern == "/images/create" || pattern == "/build")) ||
         (method == "PUT" && pattern == "/containers/{id}/archive");
}

class Server {
 public:
  explicit Server(ServiceOptions opts)
      : opts_(std::move(opts)), workers_(opts_.workers == 0 ? 1 : opts_.workers) {
    ctx_ = std::make_shared<ServiceContext>(opts_);
    add_docker_routes(router_, ctx_);
    touch();
  }

  Result<void> run();

  void touch() {
    last_activity_.store(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  struct ActiveGuard {
    explicit ActiveGuard(Server& s) : s_(s) {
      s_.active_.fetch_add(1);
      s_.touch();
    }
    ~ActiveGuard() {
      s_.touch();
      s_.active_.fetch_sub(1);
    }
    ActiveGuard(const ActiveGuard&) = delete;
    ActiveGuard& operator=(const ActiveGuard&) = delete;
    Server& s_;
  };

  template <class Protocol>
  awaitable<void> session(beast::basic_stream<Protocol> stream);
  template <class Acceptor>
  awaitable<void> accept_loop(Acceptor& acc);
  awaitable<void> idle_watch();

 private:
  Result<void> listen();
  void start_stream(int fd, std::string leftover, Response resp, bool upgrade);
  awaitable<Response> run_handler(Request& req);

  ServiceOptions opts_;
  asio::io_context io_{1};
  asio::thread_pool workers_;
  Router router_;
  std::shared_ptr<ServiceContext> ctx_;
  std::atomic<int> active_{0};
  std::atomic<int64_t> last_activity_{0};
  std::optional<asio::local::stream_protocol::acceptor> unix_acc_;
  std::optional<asio::ip::tcp::acceptor> tcp_acc_;
  std::string socket_path_;  // removed at exit when we created it
};

awaitable<Response> Server::run_handler(Request& req) {
  // The engine work runs on the pool; the I/O thread keeps accepting and serving others.
  co_return co_await asio::co_spawn(
      workers_.get_executor(),
      [this, &req]() -> awaitable<Response> { co_return router_.dispatch(req); }, use_awaitable);
}

void Server::start_stream(int fd, std::string leftover, Response resp, bool upgrade) {
  active_.fetch_add(1);
  std::thread([this, fd, leftover = std::move(leftover), resp = std::move(resp),
               upgrade]() mutable {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) {
      ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    }
    std::string head;
    if (resp.hijack) {
      head = upgrade ? "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                     : "HTTP/1.1 200 OK\r\n";
      head += "Content-Type: " +
              (resp.content_type.empty() ? std::string("application/vnd.docker.raw-stream")
                                         : resp.content_type) +
              "\r\n";
    } else {
      head = "HTTP/1.1 " + std::to_string(resp.status) + " " +
             std::string(http::obsolete_reason(static_cast<http::status>(resp.status))) + "\r\n";
      head += "Content-Type: " + resp.content_type + "\r\nConnection: close\r\n";
      if (resp.chunked) {
        head += "Transfer-Encoding: chunked\r\n";
      }
    }
    for (auto& [k, v] : resp.headers) {
      head += k + ": " + v + "\r\n";
    }
    common_headers(head);
    head += "\r\n";
    RawConnection conn;
    conn.fd = fd;
    conn.leftover = std::move(leftover);
    const bool ok = send_all(fd, head);
    if (ok && resp.chunked && !resp.hijack) {
      // The stream writes into a socket pair whose other end is relayed in chunks.
      int sp[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
        spdlog::warn("API: socketpair for a chunked stream: {}", std::strerror(errno));
        (void)send_all(fd, "0\r\n\r\n");
      } else {
        UniqueFd inner(sp[0]);
        std::thread relay(relay_chunked, UniqueFd(sp[1]), fd);
        conn.fd = inner.get();
        resp.stream(conn);
        inner.reset();
        relay.join();
      }
    } else if (ok) {
      resp.stream(conn);
    }
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
    touch();
    active_.fetch_sub(1);
  }).detach();
}

template <class Protocol>
awaitable<void> Server::session(beast::basic_stream<Protocol> stream) {
  ActiveGuard guard(*this);
  beast::flat_buffer buf;
  for (;;) {
    boost::system::error_code ec;
    http::request_parser<http::empty_body> hp;
    hp.header_limit(static_cast<std::uint32_t>(opts_.header_limit));
    // The body limit is applied per route below (uploads are unlimited and go to disk).
    hp.body_limit(std::numeric_limits<std::uint64_t>::max());
    stream.expires_after(opts_.read_timeout);
    co_await http::async_read_header(stream, buf, hp, asio::redirect_error(use_awaitable, ec));
    if (ec == http::error::header_limit) {
      std::string msg = raw_error(431, "Request Header Fields Too Large",
                                  "request headers larger than the limit");
      stream.expires_after(std::chrono::seconds(5));
      co_await asio::async_write(stream, asio::buffer(msg),
                                 asio::redirect_error(use_awaitable, ec));
      break;
    }
    if (ec) {
      // End of stream, timeout (a client too slow to send its headers) or garbage: close; a
      // parse error gets a 400 first.
      if (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message) {
        std::string msg = raw_error(400, "Bad Request", "malformed HTTP request");
        stream.expires_after(std::chrono::seconds(5));
        co_await asio::async_write(stream, asio::buffer(msg),
                                   asio::redirect_error(use_awaitable, ec));
      }
      break;
    }
    touch();
    Request req;
    const auto& h = hp.get();
    req.method = std::string(h.method_string());
    req.target = std::string(h.target());
    for (const auto& f : h) {
      std::string name(f.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      req.headers[name] = std::string(f.value());
    }
    bool keep_alive = h.keep_alive();
    const bool upgrade = [&] {
      auto u = req.header("upgrade");
      return u && (*u == "tcp" || *u == "TCP");
    }();
    auto pattern = router_.match(req);
    const bool upload = pattern && is_upload(req.method, *pattern);
    if (!upload && hp.content_length() && *hp.content_length() > opts_.body_limit) {
      std::string msg = raw_error(413, "Payload Too Large", "request body larger than the limit");
      stream.expires_after(std::chrono::seconds(5));
      co_await asio::async_write(stream, asio::buffer(msg),
                                 asio::redirect_error(use_awaitable, ec));
      break;
    }
    if (auto expect = req.header("expect"); expect && beast::iequals(*expect, "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await asio::async_write(stream, asio::buffer(kContinue),
                                 asio::redirect_error(use_awaitable, ec));
      if (ec) {
        break;
      }
    }
    std::optional<std::filesystem::path> spool;
    if (upload) {
      std::string dir = opts_.spool_dir;
      (void)util::make_dirs(dir, 0700);
      spool = std::filesystem::path(dir) / ("upload-" + util::random_id().substr(0, 16));
      http::request_parser<http::file_body> fp(std::move(hp));
      fp.body_limit(std::numeric_limits<std::uint64_t>::max());
      fp.get().body().open(spool->c_str(), beast::file_mode::write, ec);
      if (ec) {
        spool.reset();
        auto r = error_response(500, "cannot spool the upload to " + dir + ": " + ec.message());
        http::response<http::string_body> res{http::status::internal_server_error, 11};
        res.set(http::field::content_type, "application/json");
        res.body() = r.body;
        res.prepare_payload();
        co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
        break;
      }
      // Uploads may be large: the header timeout does not apply, an idle one does.
      stream.expires_after(std::chrono::minutes(30));
      co_await http::async_read(stream, buf, fp, asio::redirect_error(use_awaitable, ec));
      fp.get().body().file().close(ec);
      req.body_file = spool->string();
      keep_alive = fp.keep_alive();
    } else {
      http::request_parser<http::string_body> sp(std::move(hp));
      sp.body_limit(opts_.body_limit);
      co_await http::async_read(stream, buf, sp, asio::redirect_error(use_awaitable, ec));
      if (ec == http::error::body_limit) {
        std::string msg = raw_error(413, "Payload Too Large", "request body larger than the limit");
        stream.expires_after(std::chrono::seconds(5));
        co_await asio::async_write(stream, asio::buffer(msg),
                                   asio::redirect_error(use_awaitable, ec));
        break;
      }
      if (!ec) {
        req.body = std::move(sp.get().body());
        keep_alive = sp.keep_alive();
      }
    }
    if (ec) {
      if (spool) {
        std::error_code rm;
        std::filesystem::remove(*spool, rm);
      }
      break;
    }
    stream.expires_never();
    Response resp = co_await run_handler(req);
    if (spool) {
      std::error_code rm;
      std::filesystem::remove(*spool, rm);
    }
    touch();
    if (resp.stream) {
      std::string leftover(static_cast<const char*>(buf.data().data()), buf.size());
      int fd = stream.release_socket().release();
      start_stream(fd, std::move(leftover), std::move(resp), upgrade);
      co_return;
    }
    http::response<http::string_body> res{static_cast<http::status>(resp.status), 11};
    res.set(http::field::server, server_header());
    res.set("Api-Version", std::string(kApiVersion));
    res.set("Docker-Experimental", "false");
    res.set("Ostype", "linux");
    if (!resp.content_type.empty()) {
      res.set(http::field::content_type, resp.content_type);
    }
    for (auto& [k, v] : resp.headers) {
      res.set(k, v);
    }
    if (req.method == "HEAD") {
      res.content_length(resp.body.size());
    } else {
      res.body() = std::move(resp.body);
      res.prepare_payload();
    }
    res.keep_alive(keep_alive);
    stream.expires_after(std::chrono::minutes(5));
    if (req.method == "HEAD") {
      http::response_serializer<http::string_body> sr{res};
      sr.split(true);
      co_await http::async_write_header(stream, sr, asio::redirect_error(use_awaitable, ec));
    } else {
      co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
    }
    if (ec || !keep_alive) {
      break;
    }
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(asio::socket_base::shutdown_send, ignored);
}

template <class Acceptor>
awaitable<void> Server::accept_loop(Acceptor& acc) {
  using Protocol = typename Acceptor::protocol_type;
  for (;;) {
    boost::system::error_code ec;
    auto sock = co_await acc.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acc.is_open()) {
        co_return;
      }
      // EMFILE and friends: back off a little instead of spinning.
      asio::steady_timer t(io_, std::chrono::milliseconds(50));
      co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    touch();
    asio::co_spawn(io_, session<Protocol>(beast::basic_stream<Protocol>(std::move(sock))),
                   asio::detached);
  }
}

awaitable<void> Server::idle_watch() {
  asio::steady_timer t(io_);
  const auto limit = std::chrono::seconds(opts_.idle_timeout);
  for (;;) {
    t.expires_after(std::chrono::milliseconds(250));
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      co_return;
    }
    if (opts_.idle_timeout == 0 || active_.load() > 0) {
      continue;
    }
    auto last = std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(last_activity_.load()));
    if (std::chrono::steady_clock::now() - last >= limit) {
      spdlog::info("API service idle for {}s, exiting", opts_.idle_timeout);
      io_.stop();
      co_return;
    }
  }
}

Result<void> Server::listen() {
  // systemd socket activation: fd 3 when LISTEN_PID is us.
  const char* lpid = std::getenv("LISTEN_PID");
  const char* lfds = std::getenv("LISTEN_FDS");
  if (lpid != nullptr && lfds != nullptr && std::atoi(lpid) == ::getpid() && std::atoi(lfds) >= 1) {
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    const int fd = 3;
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      return fail_errno("getsockname", "the socket systemd passed (fd 3)");
    }
    boost::system::error_code ec;
    if (ss.ss_family == AF_UNIX) {
      unix_acc_.emplace(io_);
      unix_acc_->assign(asio::local::stream_protocol(), fd, ec);
    } else if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
      tcp_acc_.emplace(io_);
      tcp_acc_->assign(ss.ss_family == AF_INET ? asio::ip::tcp::v4() : asio::ip::tcp::v6(), fd, ec);
    } else {
      return fail(Errc::InvalidArgument,
                  "the socket systemd passed (fd 3) is neither unix nor tcp");
    }
    if (ec) {
      return fail(Errc::Internal, "use the socket systemd passed (fd 3): " + ec.message());
    }
    spdlog::info("API service on the socket passed by systemd");
    return {};
  }

  std::string uri = opts_.uri.empty() ? default_uri() : opts_.uri;
  if (uri.rfind("unix://", 0) == 0) {
    std::string path = uri.substr(7);
    if (path.empty() || path[0] != '/') {
      return fail(Errc::InvalidArgument, "API service URI " + uri +
                                             ": the unix socket path must be absolute "
                                             "(unix:///run/berth/berth.sock)");
    }
    std::filesystem::path p(path);
    BERTH_TRYV(util::make_dirs(p.parent_path(), ::geteuid() == 0 ? 0755 : 0700));
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        return fail(Errc::AlreadyExists, "API service socket " + path +
                                             " exists and is not a socket; remove it or choose "
                                             "another path");
      }
      // A live service answers on it; a stale socket of a dead one is replaced.
      asio::local::stream_protocol::socket probe(io_);
      boost::system::error_code ec;
      probe.connect(asio::local::stream_protocol::endpoint(path), ec);
      if (!ec) {
        return fail(Errc::AlreadyExists, "another service already listens on " + path +
                                             "; stop it or choose another path");
      }
      if (::unlink(path.c_str()) != 0) {
        return fail_errno("remove stale socket", path);
      }
    }
    boost::system::error_code ec;
    unix_acc_.emplace(io_);
    unix_acc_->open(asio::local::stream_protocol(), ec);
    mode_t old = ::umask(0117);  // the socket is born 0660: no window with wider access
    if (!ec) {
      unix_acc_->bind(asio::local::stream_protocol::endpoint(path), ec);
    }
    ::umask(old);
    if (ec) {
      return fail(Errc::Internal, "bind API socket " + path + ": " + ec.message());
    }
    socket_path_ = path;
    unix_acc_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return fail(Errc::Internal, "listen on " + path + ": " + ec.message());
    }
    gid_t gid = ::getegid();
    if (!opts_.group.empty()) {
      struct group* g = ::getgrnam(opts_.group.c_str());
      if (g == nullptr) {
        return fail(Errc::NotFound, "group " + opts_.group + " for the API socket does not exist");
      }
      gid = g->gr_gid;
    }
    if (::chown(path.c_str(), ::geteuid(), gid) != 0) {
      return fail_errno("chown", path);
    }
    if (::chmod(path.c_str(), 0660) != 0) {
      return fail_errno("chmod 0660", path);
    }
    spdlog::info("API service listening on unix://{}", path);
    return {};
  }
  if (uri.rfind("tcp://", 0) == 0) {
    std::string hostport = uri.substr(6);
    auto colon = hostport.rfind(':');
    if (colon == std::string::npos) {
      return fail(Errc::InvalidArgument,
                  "API service URI " + uri + ": missing port (tcp://127.0.0.1:8080)");
    }
    std::string host = hostport.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    if (host == "localhost") {
      host = "127.0.0.1";
    }
    int port = std::atoi(hostport.c_str() + colon + 1);
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec || port <= 0 || port > 65535) {
      return fail(Errc::InvalidArgument, "API service URI " + uri +
                                             ": expected tcp://127.0.0.1:PORT with a numeric "
                                             "address");
    }
    if (!addr.is_loopback()) {
      return fail(Errc::PermissionDenied,
                  "API service URI " + uri +
                      ": berth listens on tcp only on a loopback address (127.0.0.1, ::1): the "
                      "API has no authentication; use a unix socket or an SSH tunnel");
    }
    asio::ip::tcp::endpoint ep(addr, static_cast<unsigned short>(port));
    tcp_acc_.emplace(io_);
    tcp_acc_->open(ep.protocol(), ec);
    if (!ec) {
      tcp_acc_->set_option(asio::socket_base::reuse_address(true), ec);
      tcp_acc_->bind(ep, ec);
    }
    if (!ec) {
      tcp_acc_->listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
      return fail(Errc::Internal, "listen on " + uri + ": " + ec.message());
    }
    spdlog::warn(
        "API service listening on {} without authentication: every local user can run "
        "containers as this user",
        uri);
    return {};
  }
  return fail(Errc::InvalidArgument,
              "API service URI " + uri + ": use unix:///path or tcp://127.0.0.1:PORT");
}

Result<void> Server::run() {
  BERTH_TRYV(listen());
  std::signal(SIGPIPE, SIG_IGN);
  asio::signal_set signals(io_, SIGINT, SIGTERM);
  signals.async_wait([this](const boost::system::error_code& ec, int) {
    if (!ec) {
      io_.stop();
    }
  });
  if (unix_acc_) {
    asio::co_spawn(io_, accept_loop(*unix_acc_), asio::detached);
  }
  if (tcp_acc_) {
    asio::co_spawn(io_, accept_loop(*tcp_acc_), asio::detached);
  }
  asio::co_spawn(io_, idle_watch(), asio::detached);
  io_.run();
  if (!socket_path_.empty()) {
    ::unlink(socket_path_.c_str());
  }
  workers_.stop();
  return {};
}

}  // namespace

Result<void> serve(const ServiceOptions& opts) {
  ServiceOptions o = opts;
  if (o.berth_binary.empty()) {
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    o.berth_binary = ec ? "berth" : exe.string();
  }
  if (o.spool_dir.empty()) {
    auto eng = engine::Engine::open(o.overrides);
    if (!eng) {
      return fail(eng.error().code(), "API service: " + eng.error().message());
    }
    o.spool_dir = (*eng)->runroot() + "/api-spool";
  }
  Server s(std::move(o));
  return s.run();
}

}  // namespace berth::api
