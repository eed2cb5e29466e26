#include "state.hpp"

#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "berth/util/fs.hpp"

namespace berth::runtime {

using nlohmann::json;

Result<void> write_state(const std::string& dir, const ContainerState& s) {
  json j{{"ociVersion", "1.0.2"},
         {"id", s.id},
         {"pid", s.pid},
         {"start_time", s.start_time},
         {"bundle", s.bundle},
         {"created", s.created},
         {"cgroup_v2", s.cgroup_v2},
         {"cgroup_dirs", s.cgroup_dirs}};
  return util::write_file_atomic(dir + "/state.json", j.dump(), 0600);
}

Result<ContainerState> read_state(const std::string& dir) {
  BERTH_TRY(std::string text, util::read_file(dir + "/state.json"));
  try {
    json j = json::parse(text);
    ContainerState s;
    s.id = j.at("id").get<std::string>();
    s.pid = j.at("pid").get<pid_t>();
    s.start_time = j.at("start_time").get<uint64_t>();
    s.bundle = j.value("bundle", "");
    s.created = j.value("created", "");
    s.cgroup_v2 = j.value("cgroup_v2", false);
    s.cgroup_dirs = j.value("cgroup_dirs", std::vector<std::string>{});
    return s;
  } catch (const json::exception& e) {
    return fail(Errc::Corrupt, dir + "/state.json: " + e.what());
  }
}

uint64_t process_start_time(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) {
    return 0;
  }
  auto close = line.rfind(')');
  if (close == std::string::npos) {
    return 0;
  }
  // Fields after the command: state (3) ... starttime (22).
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  char state = 0;
  rest >> state;
  if (state == 'Z' || state == 'X') {
    return 0;
  }
  for (int i = 4; i < 22; ++i) {
    rest >> field;
  }
  uint64_t start = 0;
  rest >> start;
  return start;
}

bool init_alive(const ContainerState& s) {
  return s.pid > 0 && process_start_time(s.pid) == s.start_time && s.start_time != 0;
}

std::string rfc3339_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  ::gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &t);
  char out[96];
  std::snprintf(out, sizeof(out), "%s.%09ldZ", buf, ts.tv_nsec);
  return out;
}

}  // namespace berth::runtime
