// Short names, TLS/certs.d/credentials per reference, login, logout, search.
#include <sys/single_threaded.h>
#include <sys/utsname.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "berth/copy/auth.hpp"
#include "berth/copy/copy.hpp"
#include "berth/engine/engine.hpp"
#include "berth/image/reference.hpp"
#include "copy_internal.hpp"

namespace berth::copy {

std::string registry_host(const std::string& reference) {
  std::string s = reference;
  if (s.starts_with("docker://")) {
    s = s.substr(9);
  }
  return s.substr(0, s.find('/'));
}

std::string host_arch_name() {
  struct utsname u {};
  if (::uname(&u) != 0) {
    return "amd64";
  }
  std::string m = u.machine;
  if (m == "x86_64") {
    return "amd64";
  }
  if (m == "aarch64") {
    return "arm64";
  }
  if (m.starts_with("arm")) {
    return "arm";
  }
  if (m == "i686" || m == "i386") {
    return "386";
  }
  return m;
}

std::string host_architecture() {
  return "linux/" + host_arch_name();
}

Result<std::vector<std::string>> resolve_name(
    const config::RegistriesConfig& reg, const std::string& input, bool can_prompt,
    const std::function<Result<size_t>(const std::vector<std::string>&)>& prompt) {
  std::string name = input.starts_with("docker://") ? input.substr(9) : input;
  BERTH_TRY(image::Reference ref, image::parse_reference(name));
  if (!ref.domain.empty()) {
    BERTH_TRY(image::Reference norm, image::parse_normalized(name));
    return std::vector<std::string>{image::with_default_tag(norm).string()};
  }
  if (ref.path.starts_with("library/") || ref.path.find('/') == std::string::npos) {
    // Only single-component short names (and their library/ form) have aliases.
  }
  auto suffix = [&] {
    if (!ref.digest.empty()) {
      return (ref.tag.empty() ? "" : ":" + ref.tag) + "@" + ref.digest;
    }
    return ":" + (ref.tag.empty() ? std::string("latest") : ref.tag);
  }();
  if (reg.short_name_mode != config::ShortNameMode::Disabled) {
    if (auto alias = reg.resolve_alias(ref.path)) {
      return std::vector<std::string>{alias->value + suffix};
    }
  }
  std::vector<std::string> candidates;
  for (const auto& r : reg.unqualified_search_registries) {
    std::string path = ref.path;
    if (r == "docker.io" && path.find('/') == std::string::npos) {
      path = "library/" + path;
    }
    candidates.push_back(r + "/" + path + suffix);
  }
  if (candidates.empty()) {
    return fail(Errc::InvalidArgument,
                "short-name \"" + input +
                    "\" did not resolve to an alias and no unqualified-search registries are "
                    "defined in registries.conf; use a fully qualified name "
                    "(registry/repository:tag)");
  }
  if (candidates.size() > 1 && reg.short_name_mode == config::ShortNameMode::Enforcing) {
    if (!can_prompt || !prompt) {
      std::string list;
      for (const auto& c : candidates) {
        list += "\n  " + c;
      }
      return fail(Errc::InvalidArgument,
                  "short-name resolution enforced but cannot prompt without a TTY: \"" + input +
                      "\" could be any of:" + list +
                      "\nuse a fully qualified name, add an alias in registries.conf or set "
                      "short-name-mode=\"permissive\"");
    }
    BERTH_TRY(size_t chosen, prompt(candidates));
    if (chosen >= candidates.size()) {
      return fail(Errc::InvalidArgument, "no image selected for \"" + input + "\"");
    }
    return std::vector<std::string>{candidates[chosen]};
  }
  return candidates;
}

Result<sdk::TransportOptions> transport_options(const config::RegistriesConfig& /*reg*/,
                                                const std::string& reference,
                                                const RegistryAccess& access, bool insecure) {
  sdk::TransportOptions o;
  o.tls_verify = access.tls_verify.value_or(!insecure);
  std::string host = registry_host(reference);
  if (!access.cert_dir.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(access.cert_dir, ec)) {
      return fail(Errc::NotFound, "--cert-dir " + access.cert_dir + ": not a directory");
    }
    o.cert_dir = access.cert_dir;
  } else {
    const char* home = std::getenv("HOME");
    std::vector<std::string> dirs = {"/etc/containers/certs.d/" + host,
                                     "/etc/docker/certs.d/" + host};
    if (home) {
      dirs.push_back(std::string(home) + "/.config/containers/certs.d/" + host);
    }
    for (const auto& d : dirs) {
      std::error_code ec;
      if (std::filesystem::is_directory(d, ec)) {
        o.cert_dir = d;
        break;
      }
    }
  }
  if (access.credentials) {
    o.credentials = access.credentials;
  } else {
    BERTH_TRY(auto c, find_credentials(auth_paths(access.authfile), reference));
    o.credentials = c;
  }
  o.user_agent = std::string("berth/") + BERTH_VERSION;
  return o;
}

Result<sdk::Transport*> docker_transport(engine::Engine& engine) {
  static std::mutex mu;
  // Never destroyed: plugins stay loaded for the life of the process.
  static sdk::Transport* transport = nullptr;
  std::lock_guard lock(mu);
  if (transport == nullptr) {
    sdk::PluginContext ctx;
    ctx.run_root = engine.runroot();
    ctx.options_json = "{}";
    ctx.rootless = engine.rootless();
    // Debian's libcurl brings GnuTLS in (through librtmp), and GnuTLS initialises itself in its
    // library constructor: ~3.5 ms of every registry command here, for a library berth never uses
    // (curl is held to http and https, over OpenSSL; librtmp would call gnutls_global_init itself).
    // GNUTLS_NO_IMPLICIT_INIT (gnutls_global_init(3)) skips that. It is set only while the plugin
    // loads, and only in a single-threaded process (setenv is no place for a race), so nothing
    // started later inherits it.
    const bool set_env = __libc_single_threaded &&
                         std::getenv("GNUTLS_NO_IMPLICIT_INIT") == nullptr &&
                         ::setenv("GNUTLS_NO_IMPLICIT_INIT", "1", 0) == 0;
    auto t = engine.plugins().create<sdk::Transport>("docker", ctx);
    if (set_env) {
      ::unsetenv("GNUTLS_NO_IMPLICIT_INIT");
    }
    if (!t) {
      return fail(std::move(t).error().wrap("load the docker transport"));
    }
    transport = t->release();
  }
  return transport;
}

namespace {

std::string login_key(const std::string& registry) {
  std::string s = registry;
  if (s.starts_with("docker://")) {
    s = s.substr(9);
  }
  return normalize_auth_key(s);
}

}  // namespace

Result<void> login(engine::Engine& engine, const std::string& registry, const LoginOptions& opts) {
  if (!opts.access.credentials) {
    return fail(Errc::InvalidArgument, "login " + registry + ": no user name and password given");
  }
  std::string key = login_key(registry);
  std::string host = key.substr(0, key.find('/'));
  const auto& reg = engine.config().registries;
  const config::Registry* r = reg.find_registry(key);
  BERTH_TRY(auto topts, transport_options(reg, host, opts.access, r && r->insecure));
  BERTH_TRY(auto* t, docker_transport(engine));
  auto checked = t->check_login(host, topts);
  if (!checked) {
    return fail(std::move(checked).error().wrap("logging into \"" + host + "\""));
  }
  if (!opts.store) {
    return {};
  }
  return store_credentials(auth_paths(opts.access.authfile), key, *opts.access.credentials);
}

Result<std::string> login_user(const std::string& registry, const std::string& authfile) {
  std::string key = login_key(registry);
  AuthPaths p = auth_paths(authfile);
  BERTH_TRY(auto c, find_credentials(p, key));
  if (!c || c->username.empty()) {
    return fail(Errc::NotFound, "not logged into " + key);
  }
  return c->username;
}

Result<void> logout(const std::string& registry, bool all, const std::string& authfile) {
  AuthPaths p = auth_paths(authfile);
  if (all) {
    return remove_all_credentials(p);
  }
  return remove_credentials(p, login_key(registry));
}

Result<std::vector<SearchHit>> search(engine::Engine& engine, const std::string& term_in,
                                      const SearchOptions& opts) {
  std::string term = term_in.starts_with("docker://") ? term_in.substr(9) : term_in;
  std::vector<std::pair<std::string, std::string>> where;  // registry, term
  auto slash = term.find('/');
  if (slash != std::string::npos && image::looks_like_domain(term.substr(0, slash))) {
    where.emplace_back(term.substr(0, slash), term.substr(slash + 1));
  } else {
    for (const auto& r : engine.config().registries.unqualified_search_registries) {
      where.emplace_back(r, term);
    }
    if (where.empty()) {
      return fail(Errc::InvalidArgument,
                  "no registry given in \"" + term_in +
                      "\" and no unqualified-search registries are defined in registries.conf");
    }
  }
  BERTH_TRY(auto* t, docker_transport(engine));
  std::vector<SearchHit> out;
  Result<void> last_error;
  for (const auto& [reg, what] : where) {
    const config::Registry* r = engine.config().registries.find_registry(reg);
    if (r && r->blocked) {
      continue;
    }
    BERTH_TRY(auto topts,
              transport_options(engine.config().registries, reg, opts.access, r && r->insecure));
    auto hits = t->search(reg, what, opts.limit, topts);
    if (!hits) {
      last_error = fail(std::move(hits).error().wrap("searching registry \"" + reg + "\""));
      continue;
    }
    for (const auto& h : *hits) {
      out.push_back({reg, reg + "/" + h, ""});
    }
  }
  if (out.empty() && !last_error) {
    return fail(std::move(last_error).error());
  }
  return out;
}

Result<std::vector<std::string>> repository_tags(const config::RegistriesConfig& reg,
                                                 sdk::Transport& t, const std::string& repo,
                                                 const RegistryAccess& access) {
  BERTH_TRY(auto sources, reg.pull_sources(repo + ":latest"));
  BERTH_TRY(auto topts, transport_options(reg, repo, access, sources.back().insecure));
  BERTH_TRY(auto src, t.open_source(sources.back().reference, topts));
  return src->tags();
}

Result<std::vector<SearchHit>> search_tags(engine::Engine& engine, const std::string& term_in,
                                           const SearchOptions& opts) {
  std::string term = term_in.starts_with("docker://") ? term_in.substr(9) : term_in;
  BERTH_TRY(image::Reference parsed, image::parse_reference(term));
  if (!parsed.digest.empty() || term.find(':', term.rfind('/') + 1) != std::string::npos) {
    return fail(Errc::InvalidArgument,
                "--list-tags: \"" + term_in + "\" must be a repository without a tag or digest");
  }
  const auto& reg = engine.config().registries;
  std::vector<std::string> repos;  // fully qualified candidates
  auto slash = term.find('/');
  if (slash != std::string::npos && image::looks_like_domain(term.substr(0, slash))) {
    repos.push_back(term);
  } else {
    for (const auto& r : reg.unqualified_search_registries) {
      repos.push_back(r + "/" + term);
    }
    if (repos.empty()) {
      return fail(Errc::InvalidArgument,
                  "no registry given in \"" + term_in +
                      "\" and no unqualified-search registries are defined in registries.conf");
    }
  }
  BERTH_TRY(auto* t, docker_transport(engine));
  std::vector<std::string> errors;
  for (const auto& repo : repos) {
    auto tags = repository_tags(reg, *t, repo, opts.access);
    if (!tags) {
      errors.push_back(tags.error().message());
      continue;
    }
    std::vector<SearchHit> out;
    const std::string index = repo.substr(0, repo.find('/'));
    for (const auto& tag : *tags) {
      if (opts.limit > 0 && out.size() >= static_cast<size_t>(opts.limit)) {
        break;
      }
      out.push_back({index, repo, tag});
    }
    return out;
  }
  std::string all;
  for (const auto& e : errors) {
    all += "\n  " + e;
  }
  return fail(Errc::NotFound, "listing the tags of " + term_in + ":" + all);
}

}  // namespace berth::copy
