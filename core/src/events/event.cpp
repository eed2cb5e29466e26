// Event records: JSON shape, human lines, time parsing and filters, as Podman's libpod/events.
#include <time.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "berth/events/events.hpp"

namespace berth::events {

using nlohmann::json;

namespace {

constexpr int64_t kNs = 1000000000;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// "123456789" -> "123456789", "120000000" -> "12": Go trims trailing zeros of the fraction.
std::string fraction(int64_t ns) {
  if (ns == 0) {
    return "";
  }
  char buf[16];
  std::snprintf(buf, sizeof buf, ".%09lld", static_cast<long long>(ns));
  std::string s(buf);
  while (s.back() == '0') {
    s.pop_back();
  }
  return s;
}

struct LocalTime {
  struct tm tm {};
  int64_t frac = 0;
};

LocalTime local_time(int64_t unix_nano) {
  LocalTime lt;
  time_t secs = static_cast<time_t>(unix_nano / kNs);
  lt.frac = unix_nano % kNs;
  if (lt.frac < 0) {
    lt.frac += kNs;
    --secs;
  }
  localtime_r(&secs, &lt.tm);
  return lt;
}

std::string offset(long gmtoff, bool colon) {
  char buf[48];
  long a = gmtoff < 0 ? -gmtoff : gmtoff;
  std::snprintf(buf, sizeof buf, colon ? "%c%02ld:%02ld" : "%c%02ld%02ld", gmtoff < 0 ? '-' : '+',
                a / 3600, (a / 60) % 60);
  return buf;
}

// Parses exactly `n` digits at s[pos]; advances pos.
bool digits(std::string_view s, size_t& pos, size_t n, int& out) {
  if (pos + n > s.size()) {
    return false;
  }
  out = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') {
      return false;
    }
    out = out * 10 + (c - '0');
  }
  pos += n;
  return true;
}

bool lit(std::string_view s, size_t& pos, char c) {
  if (pos < s.size() && s[pos] == c) {
    ++pos;
    return true;
  }
  return false;
}

// timegm for a broken-down UTC date.
int64_t utc_seconds(int y, int mo, int d, int h, int mi, int sec) {
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return static_cast<int64_t>(timegm(&tm));
}

// The date formats of ParseInputTime. Without a zone Go's time.Parse means UTC.
std::optional<int64_t> parse_date(std::string_view s) {
  size_t p = 0;
  int y = 0;
  int mo = 0;
  int d = 0;
  if (!digits(s, p, 4, y) || !lit(s, p, '-') || !digits(s, p, 2, mo) || !lit(s, p, '-') ||
      !digits(s, p, 2, d) || mo < 1 || mo > 12 || d < 1 || d > 31) {
    return std::nullopt;
  }
  int h = 0;
  int mi = 0;
  int sec = 0;
  int64_t frac = 0;
  if (lit(s, p, 'T')) {
    if (!digits(s, p, 2, h) || !lit(s, p, ':') || !digits(s, p, 2, mi) || !lit(s, p, ':') ||
        !digits(s, p, 2, sec) || h > 23 || mi > 59 || sec > 60) {
      return std::nullopt;
    }
    if (lit(s, p, '.')) {
      size_t start = p;
      int64_t scale = kNs;
      while (p < s.size() && std::isdigit(static_cast<unsigned char>(s[p])) != 0) {
        if (p - start >= 9) {
          return std::nullopt;
        }
        scale /= 10;
        frac += (s[p] - '0') * scale;
        ++p;
      }
      if (p == start) {
        return std::nullopt;
      }
    }
  }
  int64_t zone = 0;
  if (lit(s, p, 'Z')) {
  } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
    int sign = s[p] == '-' ? -1 : 1;
    ++p;
    int zh = 0;
    int zm = 0;
    if (!digits(s, p, 2, zh) || !lit(s, p, ':') || !digits(s, p, 2, zm)) {
      return std::nullopt;
    }
    zone = sign * (zh * 3600 + zm * 60);
  }
  if (p != s.size()) {
    return std::nullopt;
  }
  return (utc_seconds(y, mo, d, h, mi, sec) - zone) * kNs + frac;
}

}  // namespace

int64_t now_nano() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kNs + ts.tv_nsec;
}

std::string format_rfc3339nano(int64_t unix_nano) {
  auto lt = local_time(unix_nano);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &lt.tm);
  std::string s = buf + fraction(lt.frac);
  return s + (lt.tm.tm_gmtoff == 0 ? std::string("Z") : offset(lt.tm.tm_gmtoff, true));
}

std::string format_go_time(int64_t unix_nano) {
  auto lt = local_time(unix_nano);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &lt.tm);
  std::string zone = lt.tm.tm_zone != nullptr ? lt.tm.tm_zone : "";
  return buf + fraction(lt.frac) + " " + offset(lt.tm.tm_gmtoff, false) + " " + zone;
}

Result<int64_t> parse_duration(std::string_view text) {
  std::string_view s = text;
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  auto bad = [&] {
    return fail(Errc::InvalidArgument, "invalid duration \"" + std::string(text) + "\"");
  };
  if (s == "0") {
    return 0;
  }
  if (s.empty()) {
    return bad();
  }
  long double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) != 0 || s[i] == '.')) {
      ++i;
    }
    if (i == 0 || std::count(s.begin(), s.begin() + static_cast<long>(i), '.') > 1 ||
        (i == 1 && s[0] == '.')) {
      return bad();
    }
    long double value = std::strtold(std::string(s.substr(0, i)).c_str(), nullptr);
    s.remove_prefix(i);
    size_t u = 0;
    while (u < s.size() && std::isdigit(static_cast<unsigned char>(s[u])) == 0 && s[u] != '.') {
      ++u;
    }
    std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    long double mult = 0;
    if (unit == "ns") {
      mult = 1;
    } else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {
      mult = 1e3L;
    } else if (unit == "ms") {
      mult = 1e6L;
    } else if (unit == "s") {
      mult = 1e9L;
    } else if (unit == "m") {
      mult = 60e9L;
    } else if (unit == "h") {
      mult = 3600e9L;
    } else {
      return unit.empty()
                 ? fail(Errc::InvalidArgument,
                        "missing unit in duration \"" + std::string(text) + "\"")
                 : fail(Errc::InvalidArgument, "unknown unit \"" + std::string(unit) +
                                                   "\" in duration \"" + std::string(text) + "\"");
    }
    total += value * mult;
  }
  if (total > 9.2e18L) {
    return fail(Errc::InvalidArgument, "invalid duration \"" + std::string(text) + "\"");
  }
  auto ns = static_cast<int64_t>(std::llround(total));
  return neg ? -ns : ns;
}

Result<int64_t> parse_time(std::string_view text, bool since, int64_t now) {
  if (auto t = parse_date(text)) {
    return *t;
  }
  // A UNIX time, possibly with a fraction.
  {
    std::string s(text);
    char* end = nullptr;
    errno = 0;
    long double v = std::strtold(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size() && errno == 0 &&
        s.find_first_of("xXpPeEnNiI") == std::string::npos) {
      long double ip = 0;
      long double fp = std::modf(v, &ip);
      return static_cast<int64_t>(ip) * kNs + static_cast<int64_t>(std::llround(fp * 1e9L));
    }
  }
  auto d = parse_duration(text);
  if (!d) {
    return fail(Errc::InvalidArgument,
                "unable to interpret time value \"" + std::string(text) +
                    "\" (use RFC3339 like 2006-01-02T15:04:05Z, a UNIX time, or a duration "
                    "like 10m)");
  }
  return since ? now - *d : now + *d;
}

Result<uint64_t> parse_size(std::string_view text) {
  std::string s(text);
  char* end = nullptr;
  errno = 0;
  long double v = std::strtold(s.c_str(), &end);
  if (end == s.c_str() || errno != 0 || v < 0) {
    return fail(Errc::InvalidArgument, "invalid size \"" + s + "\"");
  }
  std::string unit(end);
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  while (!unit.empty() && unit.front() == ' ') {
    unit.erase(0, 1);
  }
  // docker/go-units RAMInBytes: binary multiples, "b" optional, "i" tolerated.
  static const std::map<std::string, long double> kUnits = {
      {"", 1},
      {"b", 1},
      {"k", 1024.0L},
      {"kb", 1024.0L},
      {"kib", 1024.0L},
      {"m", 1024.0L * 1024},
      {"mb", 1024.0L * 1024},
      {"mib", 1024.0L * 1024},
      {"g", 1024.0L * 1024 * 1024},
      {"gb", 1024.0L * 1024 * 1024},
      {"gib", 1024.0L * 1024 * 1024},
  };
  auto it = kUnits.find(unit);
  if (it == kUnits.end()) {
    return fail(Errc::InvalidArgument, "invalid size \"" + s + "\": unknown unit");
  }
  return static_cast<uint64_t>(v * it->second);
}

json to_json(const Event& e) {
  json j = json::object();
  if (e.exit_code) {
    j["ContainerExitCode"] = *e.exit_code;
  }
  j["ID"] = e.id;
  j["Image"] = e.image;
  j["Name"] = e.name;
  if (!e.network.empty()) {
    j["Network"] = e.network;
  }
  j["Status"] = e.status;
  j["Time"] = format_rfc3339nano(e.time_nano);
  j["TimeNano"] = e.time_nano;
  j["Type"] = e.type;
  if (!e.error.empty()) {
    j["Error"] = e.error;
  }
  if (!e.pod_id.empty()) {
    j["PodID"] = e.pod_id;
  }
  j["Attributes"] = e.attributes.empty() ? json(nullptr) : json(e.attributes);
  return j;
}

Result<Event> from_json(const json& j) {
  if (!j.is_object() || !j.contains("Type") || !j.contains("Status")) {
    return fail(Errc::Corrupt, "not an event record");
  }
  try {
    Event e;
    e.type = j.value("Type", "");
    e.status = j.value("Status", "");
    e.id = j.value("ID", "");
    e.name = j.value("Name", "");
    e.image = j.value("Image", "");
    e.network = j.value("Network", "");
    e.pod_id = j.value("PodID", "");
    e.error = j.value("Error", "");
    if (j.contains("ContainerExitCode") && j["ContainerExitCode"].is_number_integer()) {
      e.exit_code = j["ContainerExitCode"].get<int>();
    }
    if (j.contains("TimeNano") && j["TimeNano"].is_number_integer()) {
      e.time_nano = j["TimeNano"].get<int64_t>();
    } else if (j.contains("Time") && j["Time"].is_string()) {
      // Podman's own log has only Time.
      auto t = parse_date(j["Time"].get<std::string>());
      e.time_nano = t.value_or(0);
    }
    if (j.contains("Attributes") && j["Attributes"].is_object()) {
      for (const auto& [k, v] : j["Attributes"].items()) {
        e.attributes[k] = v.is_string() ? v.get<std::string>() : v.dump();
      }
    }
    return e;
  } catch (const std::exception& ex) {
    return fail(Errc::Corrupt, std::string("malformed event record: ") + ex.what());
  }
}

std::string to_human(const Event& e, bool truncate_ids) {
  std::string id = truncate_ids && e.id.size() > 12 ? e.id.substr(0, 12) : e.id;
  std::string t = format_go_time(e.time_nano);
  std::string line = t + " " + e.type + " " + e.status;
  if (e.type == type::kContainer || e.type == type::kPod) {
    line += " " + id + " (image=" + e.image + ", name=" + e.name;
    if (!e.pod_id.empty()) {
      line += ", pod_id=" + e.pod_id;
    }
    if (e.exit_code) {
      line += ", containerExitCode=" + std::to_string(*e.exit_code);
    }
    for (const auto& [k, v] : e.attributes) {
      if (k != "image" && k != "name") {
        line += ", " + k + "=" + v;
      }
    }
    line += ")";
  } else if (e.type == type::kImage) {
    line += " " + id + " " + e.name;
    if (!e.error.empty()) {
      line += " (error=" + e.error + ")";
    }
  } else if (e.type == type::kNetwork) {
    line += " " + id + " (container=" + id + ", name=" + e.network + ")";
  } else if (!e.name.empty()) {
    line += " " + e.name;
  }
  return line;
}

Result<Filters> Filters::parse(const std::vector<std::string>& filters) {
  static const std::vector<std::string> kKeys = {"container", "event", "image", "label",
                                                 "network",   "pod",   "type",  "volume"};
  Filters f;
  for (const auto& spec : filters) {
    auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) {
      return fail(Errc::InvalidArgument,
                  "invalid filter \"" + spec +
                      "\": filters must be KEY=VALUE (type=, event=, "
                      "container=, image=, volume=, network=, pod=, label=)");
    }
    std::string key = spec.substr(0, eq);
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
      return fail(Errc::InvalidArgument, key + " is an invalid filter");
    }
    f.by_key_[key].push_back(spec.substr(eq + 1));
  }
  return f;
}

bool Filters::match(const Event& e) const {
  auto prefix = [](const std::string& s, const std::string& p) {
    return !p.empty() && s.rfind(p, 0) == 0;
  };
  for (const auto& [key, values] : by_key_) {
    bool any = false;
    for (const auto& v : values) {
      if (key == "type") {
        any = iequals(e.type, v);
      } else if (key == "event") {
        // Podman accepts "died" for "died" and "die"; compare case-insensitively.
        any = iequals(e.status, v) || (iequals(v, "die") && iequals(e.status, "died"));
      } else if (key == "container") {
        any = e.type == type::kContainer && (prefix(e.id, v) || e.name == v);
      } else if (key == "image") {
        any = e.type == type::kImage ? (prefix(e.id, v) || e.name == v) : e.image == v;
      } else if (key == "volume") {
        any = e.type == type::kVolume && (e.name == v || prefix(e.id, v));
      } else if (key == "network") {
        any = e.type == type::kNetwork && (e.network == v || prefix(e.id, v));
      } else if (key == "pod") {
        any = (e.type == type::kPod && (prefix(e.id, v) || e.name == v)) ||
              (!e.pod_id.empty() && prefix(e.pod_id, v));
      } else if (key == "label") {
        auto eq = v.find('=');
        auto it = e.attributes.find(v.substr(0, eq));
        any =
            it != e.attributes.end() && (eq == std::string::npos || it->second == v.substr(eq + 1));
      }
      if (any) {
        break;
      }
    }
    if (!any) {
      return false;
    }
  }
  return true;
}

}  // namespace berth::events
