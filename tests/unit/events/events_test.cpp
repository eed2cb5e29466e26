#include "berth/events/events.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

namespace berth::events {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kS = 1000000000;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/berth-events-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

class EventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("TZ", "UTC", 1);
    ::tzset();
  }
  TempDir tmp_;
  fs::path log_path() const { return tmp_.path() / "events" / "events.log"; }
  EventLog log(uint64_t max_size = 0) const {
    LogOptions o;
    o.path = log_path();
    o.max_size = max_size;
    return EventLog(o);
  }
  std::vector<std::string> lines() const {
    std::ifstream in(log_path());
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) {
      out.push_back(l);
    }
    return out;
  }
  std::vector<Event> read_all(const ReadOptions& o = {}) const {
    std::vector<Event> out;
    auto r = log().read(o, [&](const Event& e) {
      out.push_back(e);
      return true;
    });
    EXPECT_TRUE(r.has_value()) << r.error().message();
    return out;
  }
};

Event ev(std::string type, std::string status, std::string name, int64_t t = 0) {
  Event e;
  e.type = std::move(type);
  e.status = std::move(status);
  e.name = std::move(name);
  e.time_nano = t;
  return e;
}

TEST(EventTime, FormatsLikeGo) {
  ::setenv("TZ", "UTC", 1);
  ::tzset();
  EXPECT_EQ(format_rfc3339nano(1700000000LL * kS + 120000000), "2023-11-14T22:13:20.12Z");
  EXPECT_EQ(format_rfc3339nano(1700000000LL * kS), "2023-11-14T22:13:20Z");
  EXPECT_EQ(format_go_time(1700000000LL * kS + 5), "2023-11-14 22:13:20.000000005 +0000 UTC");
}

TEST(EventTime, ParsesPodmanInputs) {
  int64_t now = 1700000000LL * kS;
  EXPECT_EQ(*parse_time("2023-11-14T22:13:20Z", true, now), now);
  EXPECT_EQ(*parse_time("2023-11-14T22:13:20.5Z", true, now), now + kS / 2);
  EXPECT_EQ(*parse_time("2023-11-14T23:13:20+01:00", true, now), now);
  EXPECT_EQ(*parse_time("2023-11-14T22:13:20", true, now), now);
  EXPECT_EQ(*parse_time("2023-11-14", true, now), now - (22 * 3600 + 13 * 60 + 20) * kS);
  EXPECT_EQ(*parse_time("1700000000", true, 0), now);
  EXPECT_EQ(*parse_time("1700000000.25", true, 0), now + kS / 4);
  EXPECT_EQ(*parse_time("10m", true, now), now - 600 * kS);
  EXPECT_EQ(*parse_time("10m", false, now), now + 600 * kS);
  EXPECT_EQ(*parse_time("1h30m", true, now), now - 5400 * kS);
  auto bad = parse_time("yesterday", true, now);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("unable to interpret time value"), std::string::npos);
  EXPECT_FALSE(parse_time("2023-13-01", true, now));
}

TEST(EventTime, ParsesGoDurations) {
  EXPECT_EQ(*parse_duration("1.5s"), 1500000000);
  EXPECT_EQ(*parse_duration("300ms"), 300000000);
  EXPECT_EQ(*parse_duration("2h45m"), (2 * 3600 + 45 * 60) * kS);
  EXPECT_EQ(*parse_duration("-1m"), -60 * kS);
  EXPECT_EQ(*parse_duration("0"), 0);
  EXPECT_FALSE(parse_duration("10"));
  EXPECT_FALSE(parse_duration("10x"));
  EXPECT_FALSE(parse_duration(""));
}

TEST(EventSize, ParsesPodmanSizes) {
  EXPECT_EQ(*parse_size("1m"), 1024u * 1024);
  EXPECT_EQ(*parse_size("10MB"), 10u * 1024 * 1024);
  EXPECT_EQ(*parse_size("512k"), 512u * 1024);
  EXPECT_EQ(*parse_size("1000"), 1000u);
  EXPECT_FALSE(parse_size("lots"));
  EXPECT_FALSE(parse_size("3q"));
}

TEST(EventFilters, OrWithinKeyAndAcrossKeys) {
  auto f = Filters::parse({"type=image", "type=volume", "event=create"});
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_TRUE(f->match(ev("volume", "create", "v")));
  EXPECT_FALSE(f->match(ev("volume", "remove", "v")));
  EXPECT_FALSE(f->match(ev("container", "create", "c")));
  EXPECT_TRUE(f->match(ev("image", "create", "i")));

  auto vol = Filters::parse({"volume=v1"});
  EXPECT_TRUE(vol->match(ev("volume", "create", "v1")));
  EXPECT_FALSE(vol->match(ev("volume", "create", "v2")));
  EXPECT_FALSE(vol->match(ev("container", "create", "v1")));

  Event c = ev("container", "start", "web");
  c.id = "3f2c9a0b1d2e3f4a5b6c";
  c.image = "docker.io/library/busybox:latest";
  c.attributes = {{"app", "x"}};
  EXPECT_TRUE(Filters::parse({"container=3f2c"})->match(c));
  EXPECT_TRUE(Filters::parse({"container=web"})->match(c));
  EXPECT_FALSE(Filters::parse({"container=we"})->match(c));
  EXPECT_TRUE(Filters::parse({"image=docker.io/library/busybox:latest"})->match(c));
  EXPECT_TRUE(Filters::parse({"label=app"})->match(c));
  EXPECT_TRUE(Filters::parse({"label=app=x"})->match(c));
  EXPECT_FALSE(Filters::parse({"label=app=y"})->match(c));
  EXPECT_TRUE(Filters::parse({"EVENT=START"})->match(c));

  auto bad = Filters::parse({"colour=red"});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("colour is an invalid filter"), std::string::npos);
  EXPECT_FALSE(Filters::parse({"type"}));
}

TEST(EventJson, RoundTripsPodmanShape) {
  Event e = ev("container", "died", "web", 1700000000LL * kS + 1);
  e.id = "abc";
  e.image = "busybox";
  e.exit_code = 3;
  e.attributes = {{"k", "v"}};
  auto j = to_json(e);
  EXPECT_EQ(j["Type"], "container");
  EXPECT_EQ(j["Status"], "died");
  EXPECT_EQ(j["TimeNano"], 1700000000LL * kS + 1);
  EXPECT_EQ(j["ContainerExitCode"], 3);
  EXPECT_EQ(j["Attributes"]["k"], "v");
  auto back = from_json(j);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id, "abc");
  EXPECT_EQ(back->image, "busybox");
  EXPECT_EQ(back->exit_code, 3);
  EXPECT_EQ(back->time_nano, e.time_nano);
  EXPECT_EQ(back->attributes, e.attributes);
  // A line from Podman's own log (no TimeNano) still reads.
  auto podman = from_json(nlohmann::json::parse(
      R"({"ID":"x","Name":"v","Status":"create","Time":"2023-11-14T22:13:20.5Z","Type":"volume"})"));
  ASSERT_TRUE(podman);
  EXPECT_EQ(podman->time_nano, 1700000000LL * kS + kS / 2);
}

TEST(EventHuman, MatchesPodmanLines) {
  ::setenv("TZ", "UTC", 1);
  ::tzset();
  int64_t t = 1700000000LL * kS;
  EXPECT_EQ(to_human(ev("volume", "create", "v1", t)),
            "2023-11-14 22:13:20 +0000 UTC volume create v1");
  Event img = ev("image", "tag", "localhost/x:latest", t);
  img.id = "0123456789abcdef0123";
  EXPECT_EQ(to_human(img),
            "2023-11-14 22:13:20 +0000 UTC image tag 0123456789ab localhost/x:latest");
  EXPECT_EQ(to_human(img, false),
            "2023-11-14 22:13:20 +0000 UTC image tag 0123456789abcdef0123 localhost/x:latest");
  Event c = ev("container", "start", "web", t);
  c.id = "abc";
  c.image = "busybox";
  EXPECT_EQ(to_human(c),
            "2023-11-14 22:13:20 +0000 UTC container start abc (image=busybox, name=web)");
}

TEST_F(EventsTest, EmitsAndReadsInOrderWithFiltersAndTimes) {
  auto l = log();
  ASSERT_TRUE(l.emit(ev("image", "tag", "a", 10 * kS)));
  ASSERT_TRUE(l.emit(ev("volume", "create", "v", 20 * kS)));
  ASSERT_TRUE(l.emit(ev("image", "untag", "a", 30 * kS)));
  ASSERT_TRUE(l.emit(ev("volume", "remove", "v")));  // now

  auto all = read_all();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].status, "tag");
  EXPECT_EQ(all[3].status, "remove");
  EXPECT_GT(all[3].time_nano, 30 * kS);

  ReadOptions o;
  o.filters = *Filters::parse({"type=image"});
  auto images = read_all(o);
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(images[1].status, "untag");

  ReadOptions t;
  t.since = 20 * kS;
  t.until = 30 * kS;
  auto window = read_all(t);
  ASSERT_EQ(window.size(), 2u);
  EXPECT_EQ(window[0].status, "create");
  EXPECT_EQ(window[1].status, "untag");
}

TEST_F(EventsTest, MissingLogReadsEmptyAndDisabledLogWritesNothing) {
  EXPECT_TRUE(read_all().empty());
  LogOptions o;
  o.path = log_path();
  o.enabled = false;
  ASSERT_TRUE(EventLog(o).emit(ev("volume", "create", "v")));
  EXPECT_FALSE(fs::exists(log_path()));
}

TEST_F(EventsTest, FromConfigReadsPathLoggerAndMaxSize) {
  config::Config cfg;
  cfg.storage.runroot = (tmp_.path() / "run").string();
  cfg.containers.engine.events_logger = "file";
  cfg.containers.engine.events_logfile_path = log_path().string();
  cfg.containers.engine.events_logfile_max_size = "2k";
  auto l = EventLog::from_config(cfg);
  EXPECT_EQ(l.path(), log_path());
  EXPECT_TRUE(l.enabled());
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(l.emit(ev("volume", "create", "v" + std::to_string(i))));
  }
  struct stat st {};
  ASSERT_EQ(::stat(log_path().c_str(), &st), 0);
  EXPECT_LE(st.st_size, 2048);  // rotated at the configured size

  cfg.containers.engine.events_logger = "none";
  EXPECT_FALSE(EventLog::from_config(cfg).enabled());
  cfg.containers.engine.events_logger = "journald";  // no journald backend: the file
  cfg.containers.engine.events_logfile_path.clear();
  auto j = EventLog::from_config(cfg);
  EXPECT_TRUE(j.enabled());
  EXPECT_EQ(j.path(), tmp_.path() / "run" / "events" / "events.log");
}

TEST_F(EventsTest, MalformedLinesAreSkipped) {
  ASSERT_TRUE(log().emit(ev("volume", "create", "v1")));
  {
    std::ofstream out(log_path(), std::ios::app);
    out << "{not json\n";
  }
  ASSERT_TRUE(log().emit(ev("volume", "create", "v2")));
  auto all = read_all();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].name, "v2");
}

TEST_F(EventsTest, ConcurrentProcessesWriteWholeLines) {
  constexpr int kProcs = 8;
  constexpr int kEach = 150;
  const std::string big(3000, 'x');  // lines larger than PIPE_BUF
  std::vector<pid_t> pids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto l = log(0);
      for (int i = 0; i < kEach; ++i) {
        Event e = ev("container", "start", "p" + std::to_string(p));
        e.attributes = {{"seq", std::to_string(i)}, {"pad", big}};
        if (!l.emit(e)) {
          ::_exit(1);
        }
      }
      ::_exit(0);
    }
    pids.push_back(pid);
  }
  for (auto pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto ls = lines();
  ASSERT_EQ(ls.size(), static_cast<size_t>(kProcs * kEach));
  std::map<std::string, int> next;
  for (const auto& l : ls) {
    auto j = nlohmann::json::parse(l, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "interleaved line: " << l.substr(0, 80);
    auto e = from_json(j);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->attributes["pad"], big);
    // Each process's events appear in its own order.
    EXPECT_EQ(std::stoi(e->attributes["seq"]), next[e->name]++);
  }
  EXPECT_EQ(next.size(), static_cast<size_t>(kProcs));
}

TEST_F(EventsTest, RotationKeepsTheNewestEvents) {
  constexpr uint64_t kMax = 8192;
  auto l = log(kMax);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(l.emit(ev("volume", "create", "v" + std::to_string(i))));
  }
  struct stat st {};
  ASSERT_EQ(::stat(log_path().c_str(), &st), 0);
  EXPECT_LE(static_cast<uint64_t>(st.st_size), kMax);
  auto all = read_all();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.back().name, "v199");
  bool rotated = false;
  for (const auto& e : all) {
    rotated = rotated || (e.type == "system" && e.status == "log-rotation");
  }
  EXPECT_TRUE(rotated);
  for (const auto& l : lines()) {
    EXPECT_FALSE(nlohmann::json::parse(l, nullptr, false).is_discarded());
  }
}

TEST_F(EventsTest, FollowDeliversNewEvents) {
  auto l = log();
  ASSERT_TRUE(l.emit(ev("volume", "create", "old", 5 * kS)));
  ReadOptions o;
  o.follow = true;
  o.since = 10 * kS;               // skips "old", reads the file from the start
  o.until = now_nano() + 60 * kS;  // a guard so a bug cannot hang the test forever
  std::thread writer([&] {
    for (int i = 0; i < 3; ++i) {
      (void)l.emit(ev("volume", "create", "new" + std::to_string(i)));
    }
  });
  std::vector<std::string> seen;
  auto r = l.read(o, [&](const Event& e) {
    seen.push_back(e.name);
    return seen.size() < 3;
  });
  writer.join();
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(seen, (std::vector<std::string>{"new0", "new1", "new2"}));
}

TEST_F(EventsTest, FollowSurvivesRotation) {
  auto l = log(4096);
  ReadOptions o;
  o.follow = true;
  o.since = 1;
  o.until = now_nano() + 60 * kS;
  std::thread writer([&] {
    for (int i = 0; i < 100; ++i) {
      (void)l.emit(ev("volume", "create", "v" + std::to_string(i)));
    }
  });
  std::string last;
  auto r = l.read(o, [&](const Event& e) {
    if (e.type == "volume") {
      last = e.name;
    }
    return last != "v99";
  });
  writer.join();
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(last, "v99");
}

}  // namespace
}  // namespace berth::events
