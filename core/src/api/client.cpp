// Synchronous HTTP/1.1 over a unix or tcp socket with Boost.Beast: one connection per request.
// clang-format off
// Boost 1.74's asio headers use std::exchange without including <utility>.
#include <utility>
// clang-format on
#include "berth/api/client.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdlib>

#include "berth/api/router.hpp"
#include "berth/api/service.hpp"

namespace berth::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

Result<std::string> resolve_service_uri(const config::Config& cfg, const std::string& url,
                                        const std::string& connection, bool remote) {
  if (!url.empty()) {
    return url;
  }
  const auto& dests = cfg.containers.engine.service_destinations;
  if (!connection.empty()) {
    auto it = dests.find(connection);
    if (it == dests.end()) {
      return fail(Errc::NotFound, "connection " + connection +
                                      " is not in [engine.service_destinations] of "
                                      "containers.conf");
    }
    return it->second.uri;
  }
  if (!remote && !cfg.containers.engine.remote) {
    return std::string();
  }
  if (!cfg.containers.engine.active_service.empty()) {
    auto it = dests.find(cfg.containers.engine.active_service);
    if (it != dests.end()) {
      return it->second.uri;
    }
  }
  if (const char* h = std::getenv("CONTAINER_HOST"); h != nullptr && *h != '\0') {
    return std::string(h);
  }
  return default_uri();
}

Result<Client> Client::connect_to(const std::string& uri) {
  if (uri.rfind("unix://", 0) != 0 && uri.rfind("tcp://", 0) != 0) {
    return fail(Errc::NotSupported,
                "service URI " + uri + ": only unix:///path and tcp://host:port are supported");
  }
  Client c;
  c.uri_ = uri;
  return c;
}

namespace {

template <class Socket>
Result<ClientResponse> exchange(Socket& sock, std::string_view method, std::string_view target,
                                std::string_view body, const std::string& uri) {
  try {
    http::request<http::string_body> req{
        http::string_to_verb(beast::string_view(method.data(), method.size())), std::string(target),
        11};
    req.set(http::field::host, "d");
    req.set(http::field::user_agent, std::string("berth/") + BERTH_VERSION);
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = std::string(body);
    }
    req.prepare_payload();
    http::write(sock, req);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> p;
    p.body_limit(std::numeric_limits<std::uint64_t>::max());
    http::read(sock, buf, p);
    return ClientResponse{static_cast<int>(p.get().result_int()), std::move(p.get().body())};
  } catch (const boost::system::system_error& e) {
    return fail(Errc::Unavailable, std::string(method) + " " + std::string(target) + " on " + uri +
                                       ": " + e.code().message());
  }
}

}  // namespace

Result<ClientResponse> Client::request(std::string_view method, std::string_view target,
                                       std::string_view body) const {
  asio::io_context io;
  boost::system::error_code ec;
  if (uri_.rfind("unix://", 0) == 0) {
    asio::local::stream_protocol::socket s(io);
    s.connect(asio::local::stream_protocol::endpoint(uri_.substr(7)), ec);
    if (ec) {
      return fail(Errc::Unavailable, "cannot connect to the berth service at " + uri_ + ": " +
                                         ec.message() + " (is `berth system service` running?)");
    }
    return exchange(s, method, target, body, uri_);
  }
  std::string hostport = uri_.substr(6);
  auto colon = hostport.rfind(':');
  asio::ip::tcp::resolver r(io);
  auto eps = r.resolve(hostport.substr(0, colon),
                       colon == std::string::npos ? "80" : hostport.substr(colon + 1), ec);
  asio::ip::tcp::socket s(io);
  if (!ec) {
    asio::connect(s, eps, ec);
  }
  if (ec) {
    return fail(Errc::Unavailable,
                "cannot connect to the berth service at " + uri_ + ": " + ec.message());
  }
  return exchange(s, method, target, body, uri_);
}

Result<nlohmann::json> Client::get_json(std::string_view target) const {
  BERTH_TRY(auto res, request("GET", target));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(res.body);
  } catch (const nlohmann::json::exception& e) {
    return fail(Errc::Internal, "GET " + std::string(target) + " on " + uri_ +
                                    ": the answer is not JSON (" + e.what() + ")");
  }
  if (res.status >= 400) {
    std::string msg = j.is_object() ? j.value("message", res.body) : res.body;
    Errc code = res.status == 404   ? Errc::NotFound
                : res.status == 400 ? Errc::InvalidArgument
                : res.status == 409 ? Errc::Conflict
                : res.status == 501 ? Errc::NotSupported
                                    : Errc::Internal;
    return fail(code, msg);
  }
  return j;
}

}  // namespace berth::api
