#include <spdlog/spdlog.h>

#include <algorithm>

#include "berth/config/config.hpp"
#include "search_dirs.hpp"
#include "toml_reader.hpp"

namespace berth::config {

namespace {

using detail::join_path;
using detail::TableReader;

// One file's settings before merging: unset fields do not override earlier files.
struct Partial {
  std::optional<std::vector<std::string>> search;
  std::optional<ShortNameMode> mode;
  std::optional<std::vector<std::string>> credential_helpers;
  std::vector<Registry> registries;
  std::vector<std::pair<std::string, Alias>> aliases;  // value "" removes an earlier alias
};

// containers/image's parseLocation: trailing slashes go, URI schemes are refused.
Result<std::string> parse_location(TableReader& r, const toml::node& n, std::string_view path,
                                   std::string value) {
  while (!value.empty() && value.back() == '/') {
    value.pop_back();
  }
  if (value.starts_with("http://") || value.starts_with("https://")) {
    return fail(r.value_error(n, path,
                              "invalid location \"" + value +
                                  "\": URI schemes are not supported (write host[:port][/path]; "
                                  "use insecure = true for plain HTTP)"));
  }
  return value;
}

// The first path component names a registry host (reference.splitDockerDomain's rule).
bool has_domain(std::string_view name) {
  auto slash = name.find('/');
  if (slash == std::string_view::npos) {
    return false;
  }
  auto first = name.substr(0, slash);
  return first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
         first == "localhost";
}

bool has_tag_or_digest(std::string_view name) {
  if (name.find('@') != std::string_view::npos) {
    return true;
  }
  auto slash = name.rfind('/');
  auto last = slash == std::string_view::npos ? name : name.substr(slash + 1);
  return last.find(':') != std::string_view::npos;
}

Result<Registry> read_registry(TableReader& r, const toml::table& t, const std::string& path) {
  r.note_unknown(t, path,
                 {"prefix", "location", "insecure", "blocked", "mirror-by-digest-only", "mirror"});
  Registry reg;
  BERTH_TRYV(r.get(t, "prefix", join_path(path, "prefix"), reg.prefix));
  BERTH_TRYV(r.get(t, "location", join_path(path, "location"), reg.location));
  BERTH_TRYV(r.get(t, "insecure", join_path(path, "insecure"), reg.insecure));
  BERTH_TRYV(r.get(t, "blocked", join_path(path, "blocked"), reg.blocked));
  BERTH_TRYV(r.get(t, "mirror-by-digest-only", join_path(path, "mirror-by-digest-only"),
                   reg.mirror_by_digest_only));
  if (const toml::node* pfm = t.get("pull-from-mirror")) {
    return fail(r.value_error(*pfm, join_path(path, "pull-from-mirror"),
                              "pull-from-mirror must not be set for a non-mirror registry (set it "
                              "in a [[registry.mirror]] table)"));
  }
  if (!reg.location.empty()) {
    BERTH_TRY(reg.location,
              parse_location(r, *t.get("location"), join_path(path, "location"), reg.location));
  }
  if (reg.prefix.empty()) {
    if (reg.location.empty()) {
      return fail(r.value_error(t.source(), path,
                                "invalid [[registry]]: both location and prefix are unset"));
    }
    reg.prefix = reg.location;
  } else {
    BERTH_TRY(reg.prefix,
              parse_location(r, *t.get("prefix"), join_path(path, "prefix"), reg.prefix));
    if (!reg.prefix.starts_with("*.") && reg.location.empty()) {
      return fail(r.value_error(t.source(), path,
                                "invalid [[registry]]: location is unset and prefix \"" +
                                    reg.prefix + "\" is not of the form *.example.com"));
    }
    if (reg.prefix.find('*') != std::string::npos &&
        (!reg.prefix.starts_with("*.") || reg.prefix.find('*', 1) != std::string::npos ||
         reg.prefix.find('/') != std::string::npos || reg.prefix.find(':') != std::string::npos)) {
      return fail(r.value_error(*t.get("prefix"), join_path(path, "prefix"),
                                "invalid wildcard prefix \"" + reg.prefix +
                                    "\": only *.example.com (a leading *. and no port or path) "
                                    "is supported"));
    }
  }
  BERTH_TRY(const toml::array* mirrors, r.table_array(t, "mirror", join_path(path, "mirror")));
  if (mirrors != nullptr) {
    for (size_t i = 0; i < mirrors->size(); ++i) {
      std::string mpath = path + ".mirror[" + std::to_string(i) + "]";
      const toml::table& mt = *mirrors->get(i)->as_table();
      r.note_unknown(mt, mpath, {"location", "insecure", "pull-from-mirror"});
      Mirror m;
      BERTH_TRYV(r.get(mt, "location", join_path(mpath, "location"), m.location));
      BERTH_TRYV(r.get(mt, "insecure", join_path(mpath, "insecure"), m.insecure));
      if (!m.location.empty()) {
        BERTH_TRY(m.location,
                  parse_location(r, *mt.get("location"), join_path(mpath, "location"), m.location));
      }
      if (m.location.empty()) {
        return fail(r.value_error(mt.source(), mpath, "invalid mirror: location is unset"));
      }
      std::string pfm;
      BERTH_TRY(bool has_pfm,
                r.get(mt, "pull-from-mirror", join_path(mpath, "pull-from-mirror"), pfm));
      if (has_pfm) {
        const toml::node& n = *mt.get("pull-from-mirror");
        if (reg.mirror_by_digest_only) {
          return fail(r.value_error(n, join_path(mpath, "pull-from-mirror"),
                                    "cannot set mirror-by-digest-only for the registry \"" +
                                        reg.prefix + "\" and pull-from-mirror for its mirror \"" +
                                        m.location + "\" at once"));
        }
        if (pfm == "all" || pfm.empty()) {
          m.pull_from_mirror = PullFromMirror::All;
        } else if (pfm == "digest-only") {
          m.pull_from_mirror = PullFromMirror::DigestOnly;
        } else if (pfm == "tag-only") {
          m.pull_from_mirror = PullFromMirror::TagOnly;
        } else {
          return fail(r.value_error(
              n, join_path(mpath, "pull-from-mirror"),
              "unsupported value \"" + pfm + "\" (expected all, digest-only or tag-only)"));
        }
      }
      reg.mirrors.push_back(std::move(m));
    }
  }
  return reg;
}

// V1: [registries.search] registries = [...], [registries.insecure], [registries.block].
Result<void> read_v1(TableReader& r, const toml::table& v1, Partial& p) {
  r.note_unknown(v1, "registries", {"search", "insecure", "block"});
  std::vector<std::string> search, insecure, block;
  bool has_search = false;
  for (auto [name, list] : {std::pair<const char*, std::vector<std::string>*>{"search", &search},
                            {"insecure", &insecure},
                            {"block", &block}}) {
    std::string path = join_path("registries", name);
    BERTH_TRY(const toml::table* t, r.table(v1, name, path));
    if (t == nullptr) {
      continue;
    }
    r.note_unknown(*t, path, {"registries"});
    BERTH_TRY(bool found, r.get(*t, "registries", join_path(path, "registries"), *list));
    if (found) {
      for (auto& loc : *list) {
        BERTH_TRY(loc,
                  parse_location(r, *t->get("registries"), join_path(path, "registries"), loc));
      }
    }
    if (list == &search) {
      has_search = found;
    }
  }
  // As containers/image's ConvertToV2: one [[registry]] per location, blocked ones first.
  auto get = [&](const std::string& loc) -> Registry& {
    for (auto& reg : p.registries) {
      if (reg.location == loc) {
        return reg;
      }
    }
    Registry reg;
    reg.location = loc;
    reg.prefix = loc;
    p.registries.push_back(std::move(reg));
    return p.registries.back();
  };
  for (const auto& loc : block) {
    get(loc).blocked = true;
  }
  for (const auto& loc : insecure) {
    get(loc).insecure = true;
  }
  if (has_search) {
    p.search = search;
  }
  return {};
}

Result<Partial> parse_partial(const std::string& content, const std::string& file, bool drop_in) {
  BERTH_TRY(toml::table doc, detail::parse_toml(content, file));
  TableReader r(file, nullptr);
  Partial p;
  r.note_unknown(doc, "",
                 {"unqualified-search-registries", "short-name-mode", "credential-helpers",
                  "registry", "aliases", "registries"});
  const toml::node* v1 = doc.get("registries");
  if (v1 != nullptr) {
    if (drop_in) {
      return fail(r.value_error(*v1, "registries",
                                "registries.conf.d drop-ins must use the version 2 format "
                                "([[registry]] tables), not [registries.search/insecure/block]"));
    }
    for (const char* v2 : {"unqualified-search-registries", "short-name-mode", "credential-helpers",
                           "registry", "aliases"}) {
      if (doc.contains(v2)) {
        return fail(r.value_error(*v1, "registries",
                                  std::string("mixing the v1 format ([registries.*]) with the v2 "
                                              "format (") +
                                      v2 + ") is not supported; convert the file to v2"));
      }
    }
    BERTH_TRY(const toml::table* v1t, r.table(doc, "registries", "registries"));
    BERTH_TRYV(read_v1(r, *v1t, p));
    return p;
  }
  std::vector<std::string> list;
  BERTH_TRY(bool found,
            r.get(doc, "unqualified-search-registries", "unqualified-search-registries", list));
  if (found) {
    for (auto& loc : list) {
      BERTH_TRY(loc, parse_location(r, *doc.get("unqualified-search-registries"),
                                    "unqualified-search-registries", loc));
    }
    p.search = std::move(list);
  }
  std::string mode;
  BERTH_TRY(found, r.get(doc, "short-name-mode", "short-name-mode", mode));
  if (found) {
    if (mode == "enforcing") {
      p.mode = ShortNameMode::Enforcing;
    } else if (mode == "permissive") {
      p.mode = ShortNameMode::Permissive;
    } else if (mode == "disabled") {
      p.mode = ShortNameMode::Disabled;
    } else if (!mode.empty()) {
      return fail(r.value_error(
          *doc.get("short-name-mode"), "short-name-mode",
          "unsupported value \"" + mode + "\" (expected enforcing, permissive or disabled)"));
    }
  }
  list.clear();
  BERTH_TRY(found, r.get(doc, "credential-helpers", "credential-helpers", list));
  if (found) {
    p.credential_helpers = std::move(list);
  }
  BERTH_TRY(const toml::array* regs, r.table_array(doc, "registry", "registry"));
  if (regs != nullptr) {
    for (size_t i = 0; i < regs->size(); ++i) {
      BERTH_TRY(Registry reg,
                read_registry(r, *regs->get(i)->as_table(), "registry[" + std::to_string(i) + "]"));
      p.registries.push_back(std::move(reg));
    }
  }
  BERTH_TRY(const toml::table* aliases, r.table(doc, "aliases", "aliases"));
  if (aliases != nullptr) {
    for (auto&& [k, v] : *aliases) {
      std::string name(k.str());
      std::string path = "aliases.\"" + name + "\"";
      const auto* s = v.as_string();
      if (s == nullptr) {
        return fail(r.type_error(v, path, "a string"));
      }
      const std::string& value = s->get();
      if (name.empty() || has_domain(name) || has_tag_or_digest(name)) {
        return fail(r.value_error(
            k.source(), path,
            "invalid short name \"" + name + "\": an alias must have no registry, tag or digest"));
      }
      if (!value.empty() && (!has_domain(value) || has_tag_or_digest(value))) {
        return fail(r.value_error(v, path,
                                  "invalid alias value \"" + value +
                                      "\": it must name a registry and have no tag or digest "
                                      "(e.g. docker.io/library/fedora)"));
      }
      p.aliases.emplace_back(name, Alias{value, file});
    }
  }
  return p;
}

// containers/image's updateWithConfigurationFrom: registries merge by prefix, the other fields
// are replaced when the later file sets them.
void merge(RegistriesConfig& into, Partial&& p) {
  if (p.search) {
    into.unqualified_search_registries = std::move(*p.search);
  }
  if (p.mode) {
    into.short_name_mode = *p.mode;
  }
  if (p.credential_helpers) {
    into.credential_helpers = std::move(*p.credential_helpers);
  }
  // Within one file the first of duplicate prefixes wins (containers/image keeps the first).
  std::map<std::string, Registry> by_prefix;
  for (auto& reg : into.registries) {
    std::string key = reg.prefix;
    by_prefix.emplace(std::move(key), std::move(reg));
  }
  std::map<std::string, Registry> update;
  for (auto& reg : p.registries) {
    std::string key = reg.prefix;
    update.emplace(std::move(key), std::move(reg));
  }
  for (auto& [prefix, reg] : update) {
    by_prefix[prefix] = std::move(reg);
  }
  into.registries.clear();
  for (auto& [prefix, reg] : by_prefix) {
    into.registries.push_back(std::move(reg));
  }
  for (auto& [name, alias] : p.aliases) {
    if (alias.value.empty()) {
      into.aliases.erase(name);
    } else {
      into.aliases[name] = std::move(alias);
    }
  }
}

Result<void> check_conflicts(const RegistriesConfig& c) {
  std::map<std::string, const Registry*> by_location;
  for (const auto& reg : c.registries) {
    const std::string& key = reg.location.empty() ? reg.prefix : reg.location;
    auto [it, inserted] = by_location.emplace(key, &reg);
    if (inserted) {
      continue;
    }
    for (auto [what, a, b] : {std::tuple{"insecure", it->second->insecure, reg.insecure},
                              std::tuple{"blocked", it->second->blocked, reg.blocked}}) {
      if (a != b) {
        std::string files;
        for (const auto& f : c.files) {
          files += files.empty() ? "" : ", ";
          files += f;
        }
        return fail(Errc::InvalidArgument, std::string("registry \"") + key +
                                               "\" is defined several times with conflicting '" +
                                               what + "' settings (prefixes \"" +
                                               it->second->prefix + "\" and \"" + reg.prefix +
                                               "\"; files: " + files + ")");
      }
    }
  }
  return {};
}

Result<void> load_into(RegistriesConfig& c, const std::filesystem::path& file,
                       const std::string& content, bool drop_in) {
  BERTH_TRY(Partial p, parse_partial(content, file.string(), drop_in));
  c.files.push_back(file.string());
  merge(c, std::move(p));
  return {};
}

// refMatchingPrefix from containers/image: the length of `ref` that `prefix` covers, or npos.
size_t match_prefix(std::string_view ref, std::string_view prefix) {
  auto boundary = [&](size_t at) {
    return at == ref.size() || ref[at] == ':' || ref[at] == '/' || ref[at] == '@';
  };
  if (prefix.starts_with("*.")) {
    // "*.example.com" matches "a.example.com/..." and "a.b.example.com:5000/...", only in the
    // host part.
    std::string_view suffix = prefix.substr(1);  // ".example.com"
    size_t host_end = ref.find('/');
    std::string_view host = ref.substr(0, host_end);
    size_t idx = host.find(suffix);
    while (idx != std::string_view::npos) {
      size_t end = idx + suffix.size();
      if (idx > 0 && boundary(end)) {
        return end;
      }
      idx = host.find(suffix, idx + 1);
    }
    return std::string_view::npos;
  }
  if (!ref.starts_with(prefix) || !boundary(prefix.size())) {
    return std::string_view::npos;
  }
  return prefix.size();
}

}  // namespace

std::string_view to_string(ShortNameMode mode) {
  switch (mode) {
    case ShortNameMode::Enforcing:
      return "enforcing";
    case ShortNameMode::Permissive:
      return "permissive";
    case ShortNameMode::Disabled:
      return "disabled";
  }
  return "enforcing";
}

std::string_view to_string(PullFromMirror mode) {
  switch (mode) {
    case PullFromMirror::All:
      return "all";
    case PullFromMirror::DigestOnly:
      return "digest-only";
    case PullFromMirror::TagOnly:
      return "tag-only";
  }
  return "all";
}

const Registry* RegistriesConfig::find_registry(const std::string& image_ref) const {
  const Registry* best = nullptr;
  size_t best_len = 0;
  for (const auto& reg : registries) {
    if (match_prefix(image_ref, reg.prefix) == std::string::npos) {
      continue;
    }
    if (reg.prefix.size() > best_len) {
      best = &reg;
      best_len = reg.prefix.size();
    }
  }
  return best;
}

Result<std::vector<PullSource>> RegistriesConfig::pull_sources(const std::string& image_ref) const {
  const Registry* reg = find_registry(image_ref);
  if (reg == nullptr) {
    return std::vector<PullSource>{{"", false, image_ref}};
  }
  if (reg->blocked) {
    return fail(Errc::PermissionDenied,
                "registry " + (reg->location.empty() ? reg->prefix : reg->location) +
                    " is blocked in registries.conf (prefix \"" + reg->prefix + "\"): pulling " +
                    image_ref + " is refused");
  }
  bool digested = image_ref.find('@') != std::string::npos;
  size_t matched = match_prefix(image_ref, reg->prefix);
  std::string rest = image_ref.substr(matched);
  std::vector<PullSource> out;
  auto rewrite = [&](const std::string& location) {
    return location.empty() ? image_ref : location + rest;
  };
  for (const auto& m : reg->mirrors) {
    if (reg->mirror_by_digest_only && !digested) {
      continue;
    }
    if ((m.pull_from_mirror == PullFromMirror::DigestOnly && !digested) ||
        (m.pull_from_mirror == PullFromMirror::TagOnly && digested)) {
      continue;
    }
    out.push_back({m.location, m.insecure, rewrite(m.location)});
  }
  std::string host = reg->location;
  if (host.empty()) {
    host = image_ref.substr(0, image_ref.find('/'));
  }
  out.push_back({host, reg->insecure, rewrite(reg->location)});
  return out;
}

std::optional<Alias> RegistriesConfig::resolve_alias(const std::string& short_name) const {
  auto it = aliases.find(short_name);
  if (it == aliases.end()) {
    return std::nullopt;
  }
  return it->second;
}

Result<RegistriesConfig> parse_registries_conf(const std::string& content,
                                               const std::string& file) {
  RegistriesConfig c;
  BERTH_TRYV(load_into(c, file, content, false));
  BERTH_TRYV(check_conflicts(c));
  return c;
}

Result<RegistriesConfig> load_registries_config(const ConfigPaths& paths) {
  RegistriesConfig c;
  auto dirs = detail::dirs_low_to_high(paths);
  bool user_main = false;
  auto env_file = paths.getenv("CONTAINERS_REGISTRIES_CONF");
  if (env_file && !env_file->empty()) {
    BERTH_TRY(auto content, detail::read_if_exists(*env_file));
    if (!content) {
      return fail(Errc::NotFound, "CONTAINERS_REGISTRIES_CONF=" + *env_file +
                                      ": no such file (fix the path or unset it)");
    }
    BERTH_TRYV(load_into(c, *env_file, *content, false));
  } else {
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
      auto file = it->path / "registries.conf";
      BERTH_TRY(auto content, detail::read_if_exists(file));
      if (!content) {
        continue;
      }
      BERTH_TRYV(load_into(c, file, *content, false));
      user_main = it->user;
      break;
    }
  }
  // registries.conf.d(5): with a per-user registries.conf only the per-user drop-ins apply.
  for (const auto& dir : dirs) {
    if (user_main && !dir.user) {
      continue;
    }
    BERTH_TRY(auto files, detail::list_dropins(dir.path / "registries.conf.d"));
    for (const auto& f : files) {
      BERTH_TRY(auto content, detail::read_if_exists(f));
      if (content) {
        BERTH_TRYV(load_into(c, f, *content, true));
      }
    }
  }
  BERTH_TRYV(check_conflicts(c));
  return c;
}

}  // namespace berth::config
