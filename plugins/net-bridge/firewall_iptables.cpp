// The iptables backend: Debian's `iptables` / `ip6tables` (whichever alternative, -nft or
// -legacy, they point to), read with iptables-save and changed in one iptables-restore
// --noflush transaction per family and operation, so a rule set is never half applied.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "berth/sdk/unique_fd.hpp"
#include "firewall.hpp"

namespace berth::firewall {

namespace {

constexpr const char* kPorts = "BERTH-PORTS";
constexpr const char* kPortsComment = "berth-ports";

// The program's path in $PATH or the sbin directories (root's PATH may lack them).
std::string find_program(const std::string& name) {
  std::string path = ::getenv("PATH") != nullptr ? ::getenv("PATH") : "";
  path += ":/usr/sbin:/sbin:/usr/bin:/bin";
  std::istringstream s(path);
  for (std::string dir; std::getline(s, dir, ':');) {
    if (dir.empty()) {
      continue;
    }
    std::string p = dir + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) {
      return p;
    }
  }
  return "";
}

struct Output {
  int status = 0;
  std::string out;
  std::string err;
};

// Runs argv with `input` on its stdin; its stdout and stderr are collected.
Result<Output> run_program(const std::vector<std::string>& argv, const std::string& input) {
  int in[2];
  int out[2];
  int err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) {
    return fail_errno("pipe", argv[0]);
  }
  UniqueFd in_r(in[0]);
  UniqueFd in_w(in[1]);
  if (::pipe2(out, O_CLOEXEC) != 0) {
    return fail_errno("pipe", argv[0]);
  }
  UniqueFd out_r(out[0]);
  UniqueFd out_w(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) {
    return fail_errno("pipe", argv[0]);
  }
  UniqueFd err_r(err[0]);
  UniqueFd err_w(err[1]);
  std::vector<char*> args;
  for (const auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    return fail_errno("fork", argv[0]);
  }
  if (pid == 0) {
    ::dup2(in_r.get(), 0);
    ::dup2(out_w.get(), 1);
    ::dup2(err_w.get(), 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  in_r.reset();
  out_w.reset();
  err_w.reset();
  // iptables-restore reads all of its input before it writes anything worth a full pipe.
  auto old = ::signal(SIGPIPE, SIG_IGN);
  size_t off = 0;
  while (off < input.size()) {
    ssize_t n = ::write(in_w.get(), input.data() + off, input.size() - off);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;  // it exited early; its status and stderr say why
    }
    off += static_cast<size_t>(n);
  }
  ::signal(SIGPIPE, old);
  in_w.reset();
  Output o;
  pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  std::string* bufs[2] = {&o.out, &o.err};
  int open_fds = 2;
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno("poll", argv[0]);
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) {
        continue;
      }
      char buf[4096];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        bufs[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) {
      return fail_errno("wait for", argv[0]);
    }
  }
  o.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return o;
}

// One family's tools and what iptables-save shows of berth's tables.
struct Family {
  std::string save;     // iptables-save / ip6tables-save
  std::string restore;  // iptables-restore / ip6tables-restore
  bool v6 = false;
};

struct Saved {
  std::map<std::string, std::set<std::string>> chains;    // table -> chains
  std::map<std::string, std::vector<std::string>> rules;  // table -> "-A ..." lines
  bool has_chain(const std::string& table, const std::string& c) const {
    auto it = chains.find(table);
    return it != chains.end() && it->second.count(c) != 0;
  }
};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

Result<Saved> save(const Family& f) {
  Saved s;
  for (const char* table : {"nat", "filter"}) {
    BERTH_TRY(auto o, run_program({f.save, "-t", table}, ""));
    if (o.status != 0) {
      return fail(Errc::Internal, f.save + " -t " + table + " failed (exit " +
                                      std::to_string(o.status) + "): " + trim(o.err));
    }
    std::istringstream in(o.out);
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with(":")) {
        s.chains[table].insert(line.substr(1, line.find(' ') - 1));
      } else if (line.starts_with("-A ")) {
        s.rules[table].push_back(line);
      }
    }
  }
  return s;
}

// The comment of an iptables-save rule line ("" when none).
std::string comment_of(const std::string& rule) {
  auto at = rule.find("--comment ");
  if (at == std::string::npos) {
    return "";
  }
  at += 10;
  if (at < rule.size() && rule[at] == '"') {
    return rule.substr(at + 1, rule.find('"', at + 1) - at - 1);
  }
  return rule.substr(at, rule.find(' ', at) - at);
}

const std::vector<std::string>& rules_of(const Saved& s, const std::string& table) {
  static const std::vector<std::string> none;
  auto it = s.rules.find(table);
  return it == s.rules.end() ? none : it->second;
}

// "-D ..." lines deleting the rules of `chain` tagged with `key` (see parse_tag).
std::string delete_commented(const Saved& s, const std::string& table, const std::string& chain,
                             const std::string& key) {
  std::string out;
  for (const auto& r : rules_of(s, table)) {
    if (r.starts_with("-A " + chain + " ") && parse_tag(comment_of(r)).key == key) {
      out += "-D" + r.substr(2) + "\n";
    }
  }
  return out;
}

bool has_commented(const Saved& s, const std::string& table, const std::string& chain,
                   const std::string& comment) {
  const auto& rules = rules_of(s, table);
  return std::any_of(rules.begin(), rules.end(), [&](const std::string& r) {
    return r.starts_with("-A " + chain + " ") && comment_of(r) == comment;
  });
}

size_t rule_count(const Saved& s, const std::string& table, const std::string& chain) {
  const auto& rules = rules_of(s, table);
  return static_cast<size_t>(std::count_if(rules.begin(), rules.end(), [&](const std::string& r) {
    return r.starts_with("-A " + chain + " ");
  }));
}

std::string drop_chain(const Saved& s, const std::string& table, const std::string& chain) {
  return s.has_chain(table, chain) ? "-F " + chain + "\n-X " + chain + "\n" : "";
}

Result<void> restore(const Family& f, const std::string& script) {
  BERTH_TRY(auto o, run_program({f.restore, "--noflush", "-w", "5"}, script));
  if (o.status != 0) {
    return fail(Errc::Internal, f.restore + " --noflush failed (exit " + std::to_string(o.status) +
                                    "): " + trim(o.err) + "\n--- rules given:\n" + script);
  }
  return {};
}

class IptablesFirewall final : public Firewall {
 public:
  IptablesFirewall(Family v4, std::optional<Family> v6) : v4_(std::move(v4)), v6_(std::move(v6)) {}

  Result<void> add_network(const NetworkRules& n) override {
    for (const auto& s : n.subnets) {
      if (s.find(':') != std::string::npos && !v6_) {
        return fail(Errc::NotSupported, "iptables: subnet " + s +
                                            " is IPv6 but ip6tables-save/ip6tables-restore are "
                                            "not found (install Debian's iptables package)");
      }
    }
    for (const Family* f : families()) {
      std::vector<std::string> subnets;
      for (const auto& s : n.subnets) {
        if ((s.find(':') != std::string::npos) == f->v6) {
          subnets.push_back(s);
        }
      }
      if (subnets.empty()) {
        continue;
      }
      std::string post = n.key + "-post";
      std::string fwd = n.key + "-fwd";
      std::string nat_rules;
      std::string filter_rules;
      for (const auto& s : subnets) {
        if (!f->v6) {
          nat_rules += "-A " + post + " -s 127.0.0.0/8 -d " + s + " -j MASQUERADE\n";
        }
        nat_rules +=
            "-A " + post + " -s " + s + " -d " + s + " -m conntrack --ctstate DNAT -j MASQUERADE\n";
        if (n.internal) {
          filter_rules += "-A " + fwd + " -s " + s + " ! -d " + s + " -j DROP\n";
          filter_rules += "-A " + fwd + " ! -s " + s + " -d " + s + " -j DROP\n";
        } else {
          nat_rules += "-A " + post + " -s " + s + " ! -d " + s + " -j MASQUERADE\n";
          filter_rules +=
              "-A " + fwd + " -d " + s + " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n";
          filter_rules += "-A " + fwd + " -s " + s + " -j ACCEPT\n";
          filter_rules += "-A " + fwd + " -d " + s + " -m conntrack --ctstate DNAT -j ACCEPT\n";
        }
      }
      const std::string tag = network_tag(n.key, n.bridge, nat_rules + filter_rules);
      BERTH_TRY(auto saved, save(*f));
      auto lines = [](const std::string& text) {
        return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
      };
      if (has_commented(saved, "nat", "POSTROUTING", tag) &&
          has_commented(saved, "filter", "FORWARD", tag) &&
          rule_count(saved, "nat", post) == lines(nat_rules) &&
          rule_count(saved, "filter", fwd) == lines(filter_rules)) {
        continue;  // in place as it would be written
      }
      std::string nat = "*nat\n" + delete_commented(saved, "nat", "POSTROUTING", n.key) + ":" +
                        post + " - [0:0]\n" + nat_rules;
      std::string filter = "*filter\n" + delete_commented(saved, "filter", "FORWARD", n.key) + ":" +
                           fwd + " - [0:0]\n" + filter_rules;
      nat += "-A POSTROUTING -m comment --comment " + tag + " -j " + post + "\nCOMMIT\n";
      // First in FORWARD: ahead of a DROP policy's rules (Docker's, the admin's).
      filter += "-I FORWARD 1 -m comment --comment " + tag + " -j " + fwd + "\nCOMMIT\n";
      BERTH_TRYV(restore(*f, nat + filter));
    }
    return {};
  }

  Result<void> remove_networks_on(const std::string& bridge, const std::string& key) override {
    for (const Family* f : families()) {
      BERTH_TRY(auto saved, save(*f));
      std::set<std::string> keys = {key};
      for (const auto& r : rules_of(saved, "nat")) {
        if (auto tag = parse_tag(comment_of(r)); r.starts_with("-A POSTROUTING ") &&
                                                 tag.bridge == bridge &&
                                                 tag.key.starts_with("nw-")) {
          keys.insert(tag.key);
        }
      }
      BERTH_TRYV(remove_keys(*f, saved, keys));
    }
    return remove_base_if_unused();
  }

  Result<void> remove_network(const std::string& key) override {
    for (const Family* f : families()) {
      BERTH_TRY(auto saved, save(*f));
      BERTH_TRYV(remove_keys(*f, saved, {key}));
    }
    return {};
  }

  Result<void> add_container(const ContainerRules& c) override {
    for (const Family* f : families()) {
      const std::string& target = f->v6 ? c.container_ip6 : c.container_ip;
      std::string chain = c.key + "-dnat";
      std::string rules;
      for (const auto& p : c.ports) {
        bool any = p.host_ip.empty() || p.host_ip == "0.0.0.0" || p.host_ip == "::";
        bool v6_host = p.host_ip.find(':') != std::string::npos;
        if (target.empty() || (!any && v6_host != f->v6)) {
          continue;
        }
        for (uint32_t i = 0; i < p.range; ++i) {
          std::string rule = "-A " + chain + " -p " + p.protocol;
          if (!any) {
            rule += " -d " + p.host_ip;
          } else if (f->v6) {
            rule += " ! -d ::1/128";  // IPv6 cannot route loopback to the bridge
          }
          rule += " --dport " + std::to_string(p.host_port + i) + " -j DNAT --to-destination " +
                  (f->v6 ? "[" + target + "]" : target) + ":" +
                  std::to_string(p.container_port + i) + "\n";
          rules += rule;
        }
      }
      if (rules.empty()) {
        continue;
      }
      BERTH_TRY(auto saved, save(*f));
      std::string nat = "*nat\n";
      if (!saved.has_chain("nat", kPorts)) {
        nat += std::string(":") + kPorts + " - [0:0]\n";
      }
      for (const char* hook : {"PREROUTING", "OUTPUT"}) {
        nat += delete_commented(saved, "nat", hook, kPortsComment);
        nat += std::string("-A ") + hook + " -m addrtype --dst-type LOCAL -m comment --comment " +
               kPortsComment + " -j " + kPorts + "\n";
      }
      nat += delete_commented(saved, "nat", kPorts, c.key);
      nat += ":" + chain + " - [0:0]\n" + rules;
      nat += std::string("-A ") + kPorts + " -m comment --comment " + c.key + " -j " + chain +
             "\nCOMMIT\n";
      BERTH_TRYV(restore(*f, nat));
    }
    return {};
  }

  Result<void> remove_container(const std::string& key) override {
    for (const Family* f : families()) {
      BERTH_TRY(auto saved, save(*f));
      std::string nat =
          delete_commented(saved, "nat", kPorts, key) + drop_chain(saved, "nat", key + "-dnat");
      if (!nat.empty()) {
        BERTH_TRYV(restore(*f, "*nat\n" + nat + "COMMIT\n"));
      }
    }
    return {};
  }

  Result<void> remove_base_if_unused() override {
    for (const Family* f : families()) {
      BERTH_TRY(auto saved, save(*f));
      bool used = false;
      for (const auto& [table, chains] : saved.chains) {
        for (const auto& c : chains) {
          used = used || c.starts_with("nw-") || c.starts_with("ct-");
        }
      }
      if (used) {
        continue;
      }
      std::string nat;
      for (const char* hook : {"PREROUTING", "OUTPUT"}) {
        nat += delete_commented(saved, "nat", hook, kPortsComment);
      }
      nat += drop_chain(saved, "nat", kPorts);
      if (!nat.empty()) {
        BERTH_TRYV(restore(*f, "*nat\n" + nat + "COMMIT\n"));
      }
    }
    return {};
  }

  std::string describe() const override {
    return "iptables (" + v4_.restore + (v6_ ? ", " + v6_->restore : std::string()) + ")";
  }

 private:
  // Deletes the jumps and chains of the networks `keys` in one restore.
  static Result<void> remove_keys(const Family& f, const Saved& saved,
                                  const std::set<std::string>& keys) {
    std::string nat;
    std::string filter;
    for (const auto& key : keys) {
      nat += delete_commented(saved, "nat", "POSTROUTING", key) +
             drop_chain(saved, "nat", key + "-post");
      filter += delete_commented(saved, "filter", "FORWARD", key) +
                drop_chain(saved, "filter", key + "-fwd");
    }
    std::string script;
    if (!nat.empty()) {
      script += "*nat\n" + nat + "COMMIT\n";
    }
    if (!filter.empty()) {
      script += "*filter\n" + filter + "COMMIT\n";
    }
    return script.empty() ? Result<void>() : restore(f, script);
  }

  std::vector<const Family*> families() const {
    std::vector<const Family*> out = {&v4_};
    if (v6_) {
      out.push_back(&*v6_);
    }
    return out;
  }

  Family v4_;
  std::optional<Family> v6_;
};

}  // namespace

std::string iptables_missing() {
  for (const char* p : {"iptables-save", "iptables-restore"}) {
    if (find_program(p).empty()) {
      return std::string(p) + " not found (install Debian's iptables package)";
    }
  }
  return "";
}

Result<FirewallPtr> open_iptables() {
  if (auto why = iptables_missing(); !why.empty()) {
    return fail(Errc::NotSupported, "iptables: " + why);
  }
  Family v4{find_program("iptables-save"), find_program("iptables-restore"), false};
  std::optional<Family> v6;
  std::string s6 = find_program("ip6tables-save");
  std::string r6 = find_program("ip6tables-restore");
  if (!s6.empty() && !r6.empty()) {
    v6 = Family{s6, r6, true};
  }
  return std::make_unique<IptablesFirewall>(std::move(v4), std::move(v6));
}

}  // namespace berth::firewall
