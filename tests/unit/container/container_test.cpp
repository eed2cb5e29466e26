#include "berth/container/container.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <set>

#include "berth/config/config.hpp"
#include "berth/container/log_format.hpp"
#include "berth/container/service.hpp"
#include "berth/engine/engine.hpp"
#include "berth/util/fs.hpp"

namespace berth::container {
namespace {

using nlohmann::json;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/berth-ctr-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Names, LookLikePodmans) {
  std::regex re("^[a-z]+_[a-z]+$");
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    auto n = random_name();
    EXPECT_TRUE(std::regex_match(n, re)) << n;
    seen.insert(n);
  }
  EXPECT_GT(seen.size(), 100u);  // random, not a constant
}

TEST(Status, StringsAsPodman) {
  const int64_t s = 1000000000;
  ContainerState st;
  st.status = Status::Created;
  EXPECT_EQ(status_string(st, 100 * s), "Created");
  st.status = Status::Running;
  st.started_at = 95 * s;
  EXPECT_EQ(status_string(st, 100 * s), "Up 5 seconds");
  st.started_at = 100 * s;
  EXPECT_EQ(status_string(st, 100 * s), "Up Less than a second");
  st.status = Status::Exited;
  st.exit_code = 3;
  st.finished_at = 0;
  EXPECT_EQ(status_string(st, 150 * s), "Exited (3) 2 minutes ago");
  EXPECT_EQ(status_string(st, 70 * s), "Exited (3) About a minute ago");
  EXPECT_EQ(human_duration(3 * 3600 * s), "3 hours");
  EXPECT_EQ(human_duration(3600 * s), "About an hour");
  EXPECT_EQ(human_duration(3 * 24 * 3600 * s), "3 days");
  EXPECT_EQ(status_name(Status::Configured), "created");
  EXPECT_EQ(status_name(Status::Exited), "exited");
}

json row(const std::string& id, const std::string& name, const std::string& state, int code,
         int64_t created) {
  return json{{"Id", id},
              {"Names", json::array({name})},
              {"State", state},
              {"Exited", state == "exited"},
              {"ExitCode", code},
              {"Image", "localhost/bb:latest"},
              {"ImageID", "abcdef0123"},
              {"Created", created},
              {"Labels", json{{"app", "web"}, {"tier", ""}}}};
}

TEST(PsFilters, Match) {
  auto created = [](const std::string& key) -> std::optional<int64_t> {
    if (key == "old") {
      return int64_t{100} * 1000000000;
    }
    return std::nullopt;
  };
  json r = row("0123456789ab", "eager_turing", "exited", 3, 200);
  auto m = [&](const std::string& f) { return filter_matches(r, f, created).value(); };
  EXPECT_TRUE(m("id=0123"));
  EXPECT_FALSE(m("id=123"));
  EXPECT_TRUE(m("name=turing"));
  EXPECT_FALSE(m("name=curie"));
  EXPECT_TRUE(m("label=app"));
  EXPECT_TRUE(m("label=app=web"));
  EXPECT_FALSE(m("label=app=db"));
  EXPECT_FALSE(m("label=missing"));
  EXPECT_TRUE(m("status=exited"));
  EXPECT_FALSE(m("status=running"));
  EXPECT_TRUE(m("exited=3"));
  EXPECT_FALSE(m("exited=0"));
  EXPECT_TRUE(m("ancestor=localhost/bb:latest"));
  EXPECT_TRUE(m("ancestor=bb"));
  EXPECT_TRUE(m("ancestor=abcdef"));
  EXPECT_FALSE(m("ancestor=alpine"));
  EXPECT_TRUE(m("since=old"));
  EXPECT_FALSE(m("before=old"));
  EXPECT_FALSE(filter_matches(r, "status=bogus", created).has_value());
  EXPECT_FALSE(filter_matches(r, "color=red", created).has_value());
  EXPECT_FALSE(filter_matches(r, "noequals", created).has_value());
  EXPECT_FALSE(filter_matches(r, "since=nosuch", created).has_value());
}

TEST(DetachKeys, Parse) {
  EXPECT_EQ(parse_detach_keys("ctrl-p,ctrl-q").value(), "\x10\x11");
  EXPECT_EQ(parse_detach_keys("a,ctrl-[").value(), "a\x1b");
  EXPECT_EQ(parse_detach_keys("").value(), "");
  EXPECT_FALSE(parse_detach_keys("ctrl-1").has_value());
  EXPECT_FALSE(parse_detach_keys("shift-a").has_value());
}

ContainerRecord sample(const std::string& id, const std::string& name) {
  ContainerRecord r;
  r.id = id;
  r.name = name;
  r.image_id = "img";
  r.image_name = "localhost/bb:latest";
  r.layer_id = "layer-" + id;
  r.created = 42;
  r.bundle = "/nowhere";
  r.options.image = "bb";
  r.options.env = {"A=b"};
  r.options.labels = {{"k", "v"}};
  r.options.entrypoint = std::vector<std::string>{"/bin/sh", "-c"};
  r.options.oom_score_adj = 100;
  r.path_args = {"/bin/sh", "-c", "true"};
  return r;
}

TEST(ContainerDb, RoundTripAndLookup) {
  TempDir t;
  auto db = ContainerDb::open(t.path(), false).value();
  ASSERT_TRUE(db->insert(sample("aaaa1111", "first")));
  ASSERT_TRUE(db->insert(sample("aaaa2222", "second")));
  auto dup = db->insert(sample("bbbb", "first"));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), Errc::AlreadyExists);
  EXPECT_NE(dup.error().message().find("\"first\" is already in use"), std::string::npos);

  auto r = db->lookup("first").value();
  EXPECT_EQ(r.id, "aaaa1111");
  EXPECT_EQ(r.options.env, std::vector<std::string>{"A=b"});
  EXPECT_EQ(r.options.labels.at("k"), "v");
  ASSERT_TRUE(r.options.entrypoint);
  EXPECT_EQ(r.options.entrypoint->size(), 2u);
  EXPECT_EQ(r.options.oom_score_adj, 100);
  EXPECT_EQ(r.path_args.back(), "true");
  EXPECT_EQ(db->lookup("aaaa2").value().name, "second");
  auto amb = db->lookup("aaaa");
  ASSERT_FALSE(amb);
  EXPECT_EQ(amb.error().code(), Errc::InvalidArgument);
  EXPECT_EQ(db->lookup("zzz").error().code(), Errc::NotFound);

  r.exit_code = 7;
  r.ever_started = true;
  ASSERT_TRUE(db->update(r));
  // Another connection (another process) sees the write.
  auto db2 = ContainerDb::open(t.path(), true).value();
  EXPECT_EQ(db2->lookup("first").value().exit_code, 7);
  ASSERT_TRUE(db->remove("aaaa1111"));
  EXPECT_EQ(db2->all().value().size(), 1u);
  EXPECT_FALSE(db2->name_taken("first").value());
}

TEST(ContainerState, ExitFileWinsAndDeadPidIsExited) {
  TempDir t;
  ContainerRecord rec = sample("cafe", "c");
  EXPECT_EQ(read_state(t.path(), rec).status, Status::Configured);

  // A running container whose pid is gone (its monitor was killed) is exited.
  pid_t child = ::fork();
  if (child == 0) {
    _exit(0);
  }
  ::waitpid(child, nullptr, 0);
  ContainerState st;
  st.status = Status::Running;
  st.pid = child;
  st.started_at = 1;
  ASSERT_TRUE(write_state(t.path(), rec.id, st));
  EXPECT_EQ(read_state(t.path(), rec).status, Status::Exited);

  // Our own pid is alive: running.
  st.pid = ::getpid();
  ASSERT_TRUE(write_state(t.path(), rec.id, st));
  EXPECT_EQ(read_state(t.path(), rec).status, Status::Running);

  // The monitor's exit file: exited with its code, even with a live pid recorded.
  ASSERT_TRUE(util::write_file_atomic(exit_file(t.path(), rec.id), "3"));
  auto s = read_state(t.path(), rec);
  EXPECT_EQ(s.status, Status::Exited);
  EXPECT_EQ(s.exit_code, 3);
  EXPECT_GT(s.finished_at, 0);
}

TEST(ContainerLock, SerialisesProcesses) {
  TempDir t;
  int held[2], release[2];
  ASSERT_EQ(::pipe(held), 0);
  ASSERT_EQ(::pipe(release), 0);
  pid_t child = ::fork();
  if (child == 0) {
    ::close(held[0]);
    ::close(release[1]);
    auto l = ContainerLock::acquire(t.path(), "abc");
    char c = l ? 'y' : 'n';
    (void)!::write(held[1], &c, 1);
    (void)!::read(release[0], &c, 1);  // hold the lock until the parent says so
    _exit(0);
  }
  ::close(held[1]);
  ::close(release[0]);
  char c = 0;
  ASSERT_EQ(::read(held[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  // Held by the other process: a non-blocking attempt on the same file is refused.
  const std::string path = t.path() + "/locks/container-abc.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_NE(::flock(fd, LOCK_EX | LOCK_NB), 0);
  EXPECT_EQ(errno, EWOULDBLOCK);
  ::close(fd);
  ::close(release[1]);
  ::waitpid(child, nullptr, 0);
  EXPECT_TRUE(ContainerLock::acquire(t.path(), "abc"));
  ::close(held[0]);
}

// The engine over a temporary store, with one container record whose bundle holds `log`.
struct LogFixture {
  TempDir t;
  std::unique_ptr<engine::Engine> eng;
  std::string bundle;
  explicit LogFixture(const std::string& log) {
    config::Config cfg;
    cfg.storage.graphroot = t.path() + "/root";
    cfg.storage.runroot = t.path() + "/run";
    EXPECT_TRUE(util::make_dirs(cfg.storage.graphroot));
    bundle = t.path() + "/bundle";
    EXPECT_TRUE(util::make_dirs(bundle));
    EXPECT_TRUE(util::write_file_atomic(bundle + "/ctr.log", log));
    auto r = sample("cccc3333", "logged");
    r.bundle = bundle;
    r.ever_started = true;
    EXPECT_TRUE(ContainerDb::open(cfg.storage.graphroot, false).value()->insert(r));
    eng = engine::Engine::with(cfg, {});
  }
  // What write_logs puts on stdout.
  std::string write(OpenedLogs& logs, LogsOptions o) {
    int p[2];
    EXPECT_EQ(::pipe(p), 0);
    o.out_fd = p[1];
    o.err_fd = p[1];
    EXPECT_TRUE(write_logs(*eng, logs, o));
    ::close(p[1]);
    std::string out = util::read_all(p[0], "pipe").value();
    ::close(p[0]);
    return out;
  }
};

std::string records(int64_t t, std::string_view text) {
  std::string out;
  append_log_records(out, t, LogStream::Stdout, text);
  return out;
}

TEST(Logs, OpenedLogsStayReadableAfterTheContainerIsRemoved) {
  LogFixture f(records(1, "x\n"));
  auto opened = open_logs(*f.eng, {"logged"}).value();
  // What a client removing the container before it reads the answer does.
  ASSERT_TRUE(ContainerDb::open(f.eng->graphroot(), false).value()->remove("cccc3333"));
  std::filesystem::remove_all(f.bundle);
  LogsOptions o;
  o.follow = true;
  EXPECT_EQ(f.write(*opened, o), "x\n");
  EXPECT_EQ(open_logs(*f.eng, {"logged"}).error().code(), Errc::NotFound);
}

TEST(Logs, FollowReadsARotatedFileToItsEndThenTheNewOne) {
  LogFixture f(records(1, "one\n"));
  auto opened = open_logs(*f.eng, {"logged"}).value();
  // The monitor appends to the file it has, then rotates and goes on in a new one.
  {
    int fd = ::open((f.bundle + "/ctr.log").c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(util::write_all(fd, records(2, "two\n"), "log"));
    ::close(fd);
  }
  ASSERT_EQ(::rename((f.bundle + "/ctr.log").c_str(), (f.bundle + "/ctr.log.1").c_str()), 0);
  ASSERT_TRUE(util::write_file_atomic(f.bundle + "/ctr.log", records(3, "three\n")));
  LogsOptions o;
  o.follow = true;
  EXPECT_EQ(f.write(*opened, o), "one\ntwo\nthree\n");
  // Opened after the rotation: the rotated file, then the current one; --tail counts both.
  auto again = open_logs(*f.eng, {"logged"}).value();
  o.tail = 2;
  EXPECT_EQ(f.write(*again, o), "two\nthree\n");
}

}  // namespace
}  // namespace berth::container
