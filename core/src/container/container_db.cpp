// The container records: <graphroot>/containers.db (WAL, busy timeout, BEGIN IMMEDIATE writes).
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "../store/sqlite_db.hpp"
#include "berth/container/container.hpp"

namespace berth::container {

using nlohmann::json;

void to_json(json& j, const CreateOptions& o) {
  j = json{{"image", o.image},
           {"name", o.name},
           {"command", o.command},
           {"env", o.env},
           {"workdir", o.workdir},
           {"user", o.user},
           {"hostname", o.hostname},
           {"tty", o.tty},
           {"console_size",
            o.console_size ? json::array({o.console_size->first, o.console_size->second}) : json()},
           {"interactive", o.interactive},
           {"init", o.init},
           {"init_path", o.init_path},
           {"labels", o.labels},
           {"annotations", o.annotations},
           {"stop_signal", o.stop_signal},
           {"stop_timeout", o.stop_timeout},
           {"log_driver", o.log_driver},
           {"log_opts", o.log_opts},
           {"network", o.network},
           {"runtime", o.runtime},
           {"cap_add", o.cap_add},
           {"cap_drop", o.cap_drop},
           {"docker_default_caps", o.docker_default_caps},
           {"privileged", o.privileged},
           {"no_new_privileges", o.no_new_privileges},
           {"read_only", o.read_only},
           {"ulimits", o.ulimits},
           {"sysctls", o.sysctls},
           {"remove", o.remove},
           {"restart_policy", o.restart_policy},
           {"detach_keys", o.detach_keys},
           {"create_command", o.create_command},
           {"pull", o.pull},
           {"net", o.net},
           {"storage", o.storage},
           {"resources", o.resources}};
  if (o.entrypoint) {
    j["entrypoint"] = *o.entrypoint;
  }
  if (o.oom_score_adj) {
    j["oom_score_adj"] = *o.oom_score_adj;
  }
}

void from_json(const json& j, CreateOptions& o) {
  CreateOptions d;
  o.image = j.value("image", d.image);
  o.name = j.value("name", d.name);
  o.command = j.value("command", d.command);
  if (j.contains("entrypoint")) {
    o.entrypoint = j["entrypoint"].get<std::vector<std::string>>();
  }
  o.env = j.value("env", d.env);
  o.workdir = j.value("workdir", d.workdir);
  o.user = j.value("user", d.user);
  o.hostname = j.value("hostname", d.hostname);
  o.tty = j.value("tty", d.tty);
  if (auto cs = j.find("console_size"); cs != j.end() && cs->is_array() && cs->size() == 2) {
    o.console_size = {(*cs)[0].get<uint16_t>(), (*cs)[1].get<uint16_t>()};
  }
  o.interactive = j.value("interactive", d.interactive);
  o.init = j.value("init", d.init);
  o.init_path = j.value("init_path", d.init_path);
  o.labels = j.value("labels", d.labels);
  o.annotations = j.value("annotations", d.annotations);
  o.stop_signal = j.value("stop_signal", d.stop_signal);
  o.stop_timeout = j.value("stop_timeout", d.stop_timeout);
  o.log_driver = j.value("log_driver", d.log_driver);
  o.log_opts = j.value("log_opts", d.log_opts);
  o.network = j.value("network", d.network);
  o.runtime = j.value("runtime", d.runtime);
  o.cap_add = j.value("cap_add", d.cap_add);
  o.cap_drop = j.value("cap_drop", d.cap_drop);
  o.docker_default_caps = j.value("docker_default_caps", d.docker_default_caps);
  o.privileged = j.value("privileged", d.privileged);
  o.no_new_privileges = j.value("no_new_privileges", d.no_new_privileges);
  o.read_only = j.value("read_only", d.read_only);
  o.ulimits = j.value("ulimits", d.ulimits);
  o.sysctls = j.value("sysctls", d.sysctls);
  if (j.contains("oom_score_adj")) {
    o.oom_score_adj = j["oom_score_adj"].get<int>();
  }
  o.remove = j.value("remove", d.remove);
  o.restart_policy = j.value("restart_policy", d.restart_policy);
  o.detach_keys = j.value("detach_keys", d.detach_keys);
  o.create_command = j.value("create_command", d.create_command);
  o.pull = j.value("pull", d.pull);
  o.net = j.value("net", d.net);
  o.storage = j.value("storage", d.storage);
  o.resources = j.value("resources", d.resources);
}

namespace {

constexpr const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS containers(
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  image_id TEXT NOT NULL,
  image_name TEXT NOT NULL,
  layer_id TEXT NOT NULL,
  created INTEGER NOT NULL,
  options TEXT NOT NULL,
  bundle TEXT NOT NULL,
  labels TEXT NOT NULL,
  annotations TEXT NOT NULL,
  restart_policy TEXT NOT NULL,
  state TEXT NOT NULL);
)";

constexpr const char* kColumns =
    "id, name, image_id, image_name, layer_id, created, options, bundle, labels, annotations, "
    "restart_policy, state";

std::string state_json(const ContainerRecord& r) {
  return json{{"path_args", r.path_args},         {"started_at", r.started_at},
              {"finished_at", r.finished_at},     {"exit_code", r.exit_code},
              {"restart_count", r.restart_count}, {"ever_started", r.ever_started}}
      .dump();
}

Result<ContainerRecord> read_row(const store::Stmt& s) {
  ContainerRecord r;
  r.id = s.text(0);
  r.name = s.text(1);
  r.image_id = s.text(2);
  r.image_name = s.text(3);
  r.layer_id = s.text(4);
  r.created = s.integer(5);
  r.bundle = s.text(7);
  try {
    r.options = json::parse(s.text(6)).get<CreateOptions>();
    json st = json::parse(s.text(11));
    r.path_args = st.value("path_args", std::vector<std::string>{});
    r.started_at = st.value("started_at", int64_t{0});
    r.finished_at = st.value("finished_at", int64_t{0});
    r.exit_code = st.value("exit_code", 0);
    r.restart_count = st.value("restart_count", 0);
    r.ever_started = st.value("ever_started", false);
  } catch (const json::exception& e) {
    return fail(Errc::Corrupt, "container " + r.id + ": record: " + e.what() +
                                   " (remove it with `berth rm -f " + r.id + "`)");
  }
  return r;
}

class SqliteContainerDb final : public ContainerDb {
 public:
  explicit SqliteContainerDb(store::Db db) : db_(std::move(db)) {}

  Result<void> insert(const ContainerRecord& r) override {
    BERTH_TRY(auto tx, store::WriteTx::begin(db_));
    BERTH_TRY(auto s, db_.prepare(std::string("INSERT INTO containers(") + kColumns +
                                  ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?)"));
    bind_all(s, r);
    auto rc = s.run();
    if (!rc) {
      if (rc.error().code() == Errc::Conflict) {
        return fail(Errc::AlreadyExists,
                    "the container name \"" + r.name +
                        "\" is already in use; remove that container or choose another name "
                        "(--replace replaces it)");
      }
      return rc;
    }
    return tx.commit();
  }

  Result<void> update(const ContainerRecord& r) override {
    BERTH_TRY(auto tx, store::WriteTx::begin(db_));
    BERTH_TRY(auto s, db_.prepare("UPDATE containers SET id=?1, name=?2, image_id=?3, "
                                  "image_name=?4, layer_id=?5, created=?6, options=?7, bundle=?8, "
                                  "labels=?9, annotations=?10, restart_policy=?11, state=?12 "
                                  "WHERE id=?1"));
    bind_all(s, r);
    auto rc = s.run();
    if (!rc) {
      if (rc.error().code() == Errc::Conflict) {
        return fail(Errc::AlreadyExists, "the container name \"" + r.name + "\" is already in use");
      }
      return rc;
    }
    return tx.commit();
  }

  Result<void> remove(const std::string& id) override {
    BERTH_TRY(auto tx, store::WriteTx::begin(db_));
    BERTH_TRY(auto s, db_.prepare("DELETE FROM containers WHERE id=?"));
    s.bind(1, id);
    BERTH_TRYV(s.run());
    return tx.commit();
  }

  Result<std::vector<ContainerRecord>> all() override {
    return query(std::string("SELECT ") + kColumns + " FROM containers ORDER BY created", {});
  }

  Result<std::optional<ContainerRecord>> by_id(const std::string& id) override {
    BERTH_TRY(auto rows,
              query(std::string("SELECT ") + kColumns + " FROM containers WHERE id=?", id));
    if (rows.empty()) {
      return std::optional<ContainerRecord>();
    }
    return std::optional<ContainerRecord>(std::move(rows[0]));
  }

  Result<ContainerRecord> lookup(const std::string& key) override {
    if (key.empty()) {
      return fail(Errc::InvalidArgument, "empty container name or ID");
    }
    BERTH_TRY(
        auto rows,
        query(std::string("SELECT ") + kColumns + " FROM containers WHERE name=?1 OR id=?1", key));
    if (!rows.empty()) {
      return std::move(rows[0]);
    }
    BERTH_TRY(auto pre, query(std::string("SELECT ") + kColumns +
                                  " FROM containers WHERE substr(id, 1, length(?1))=?1",
                              key));
    if (pre.size() == 1) {
      return std::move(pre[0]);
    }
    if (pre.size() > 1) {
      return fail(Errc::InvalidArgument,
                  "more than one container matches \"" + key + "\": give more of the ID");
    }
    return fail(Errc::NotFound, "no container with name or ID \"" + key + "\" found");
  }

  Result<bool> name_taken(const std::string& name) override {
    BERTH_TRY(auto rows,
              query(std::string("SELECT ") + kColumns + " FROM containers WHERE name=?", name));
    return !rows.empty();
  }

 private:
  static void bind_all(store::Stmt& s, const ContainerRecord& r) {
    s.bind(1, r.id)
        .bind(2, r.name)
        .bind(3, r.image_id)
        .bind(4, r.image_name)
        .bind(5, r.layer_id)
        .bind(6, r.created)
        .bind(7, json(r.options).dump())
        .bind(8, r.bundle)
        .bind(9, json(r.options.labels).dump())
        .bind(10, json(r.options.annotations).dump())
        .bind(11, r.options.restart_policy)
        .bind(12, state_json(r));
  }

  Result<std::vector<ContainerRecord>> query(const std::string& sql,
                                             const std::optional<std::string>& arg) {
    BERTH_TRY(auto s, db_.prepare(sql));
    if (arg) {
      s.bind(1, *arg);
    }
    std::vector<ContainerRecord> out;
    for (;;) {
      BERTH_TRY(bool row, s.step());
      if (!row) {
        break;
      }
      BERTH_TRY(auto r, read_row(s));
      out.push_back(std::move(r));
    }
    return out;
  }

  store::Db db_;
};

}  // namespace

namespace {

// The schema this code writes; PRAGMA user_version holds the one a database has (0: none yet, or
// a database made before versions were recorded, whose table CREATE IF NOT EXISTS leaves alone).
constexpr int64_t kSchemaVersion = 1;

Result<int64_t> schema_version(store::Db& db) {
  BERTH_TRY(auto s, db.prepare("PRAGMA user_version"));
  BERTH_TRY(bool row, s.step());
  return row ? s.integer(0) : 0;
}

// DDL and the journal mode, only when the schema is missing or old: opens of a current database
// write nothing and take no lock, so readers never queue behind them (the busy timeout is 30 s).
Result<void> ensure_schema(store::Db& db) {
  BERTH_TRY(int64_t have, schema_version(db));
  if (have >= kSchemaVersion) {
    return {};
  }
  // WAL persists in the file; switching needs no transaction open, and is a no-op once set.
  bool wal = false;
  {
    BERTH_TRY(auto jm, db.prepare("PRAGMA journal_mode"));
    BERTH_TRY(bool row, jm.step());
    wal = row && jm.text(0) == "wal";
  }  // finalized: a live statement is an open read transaction
  // The switch takes an exclusive lock and does not wait on the busy timeout: when several
  // processes make the database at once (the first `run` and a `container exists` beside it),
  // the losers retry until the winner is done (then the mode is WAL already), for up to 30 s.
  for (int attempt = 0; !wal; ++attempt) {
    auto r = db.exec("PRAGMA journal_mode=WAL");
    if (r) {
      break;
    }
    if (attempt >= 3000) {
      return r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    BERTH_TRY(auto jm, db.prepare("PRAGMA journal_mode"));
    BERTH_TRY(bool row, jm.step());
    wal = row && jm.text(0) == "wal";
  }
  BERTH_TRY(auto tx, store::WriteTx::begin(db));
  BERTH_TRY(have, schema_version(db));  // another process may have won the race
  if (have < kSchemaVersion) {
    BERTH_TRYV(db.exec(kSchema));
    BERTH_TRYV(db.exec("PRAGMA user_version=" + std::to_string(kSchemaVersion)));
  }
  return tx.commit();
}

}  // namespace

Result<std::unique_ptr<ContainerDb>> ContainerDb::open(const std::string& graph_root,
                                                       bool read_only) {
  const std::string path = graph_root + "/containers.db";
  if (read_only) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      // SQLite >= 3.22 opens a WAL database read-only and makes its -shm itself when missing.
      BERTH_TRY(auto db, store::Db::open(path, true));
      BERTH_TRY(int64_t have, schema_version(db));
      if (have >= kSchemaVersion) {
        return std::unique_ptr<ContainerDb>(std::make_unique<SqliteContainerDb>(std::move(db)));
      }
    }
    // First use (or an old schema): create or upgrade it.
  }
  if (::mkdir(graph_root.c_str(), 0700) != 0 && errno != EEXIST) {
    return fail_errno("create the store directory", graph_root);
  }
  BERTH_TRY(auto db, store::Db::open(path, false));
  BERTH_TRYV(ensure_schema(db));
  // As the image store: in WAL mode NORMAL keeps the database consistent through a crash of
  // any process, syncing at checkpoints instead of at every commit (a power loss may lose the
  // last commits, never corrupt). Per connection; writes nothing.
  BERTH_TRYV(db.exec("PRAGMA synchronous=NORMAL"));
  return std::unique_ptr<ContainerDb>(std::make_unique<SqliteContainerDb>(std::move(db)));
}

}  // namespace berth::container
