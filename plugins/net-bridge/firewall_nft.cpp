// The nftables backend: libnftables loaded with dlopen, so a host without it (or whose kernel
// has no nf_tables) still loads the plugin and falls back to iptables.
#include <dlfcn.h>
#include <nftables/libnftables.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "firewall.hpp"

namespace berth::firewall {

namespace {

constexpr const char* kTable = "inet berth";

// The entry points of libnftables.so.1 that berth uses.
struct NftApi {
  decltype(&nft_ctx_new) ctx_new = nullptr;
  decltype(&nft_ctx_free) ctx_free = nullptr;
  decltype(&nft_ctx_buffer_output) buffer_output = nullptr;
  decltype(&nft_ctx_buffer_error) buffer_error = nullptr;
  decltype(&nft_ctx_output_set_flags) set_flags = nullptr;
  decltype(&nft_run_cmd_from_buffer) run = nullptr;
  decltype(&nft_ctx_get_output_buffer) output = nullptr;
  decltype(&nft_ctx_get_error_buffer) error = nullptr;
  std::string missing;  // why it cannot be used; empty: loaded
};

const NftApi& api() {
  static const NftApi a = [] {
    NftApi r;
    // Plugins load single-threaded and are never unloaded: the handle stays for the process.
    void* h = ::dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      const char* e = ::dlerror();
      r.missing = std::string("libnftables.so.1 cannot be loaded (") + (e ? e : "?") +
                  "; install Debian's libnftables1)";
      return r;
    }
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(h, name));
      if (fn == nullptr && r.missing.empty()) {
        r.missing = std::string("libnftables.so.1 has no symbol ") + name;
      }
    };
    sym(r.ctx_new, "nft_ctx_new");
    sym(r.ctx_free, "nft_ctx_free");
    sym(r.buffer_output, "nft_ctx_buffer_output");
    sym(r.buffer_error, "nft_ctx_buffer_error");
    sym(r.set_flags, "nft_ctx_output_set_flags");
    sym(r.run, "nft_run_cmd_from_buffer");
    sym(r.output, "nft_ctx_get_output_buffer");
    sym(r.error, "nft_ctx_get_error_buffer");
    return r;
  }();
  return a;
}

std::string family_of(const std::string& cidr) {
  return cidr.find(':') != std::string::npos ? "ip6" : "ip";
}

// What `list table inet berth` shows: its chains, and the rules with a comment (berth's jumps).
struct Listing {
  bool exists = false;
  std::map<std::string, size_t> rule_counts;  // chain -> number of rules
  struct Jump {
    std::string chain;
    std::string comment;
    int64_t handle = 0;
  };
  std::vector<Jump> jumps;

  bool has_chain(const std::string& c) const { return rule_counts.count(c) != 0; }
  size_t rules_in(const std::string& c) const {
    auto it = rule_counts.find(c);
    return it == rule_counts.end() ? 0 : it->second;
  }
  bool has_jump(const std::string& chain, const std::string& comment) const {
    return std::any_of(jumps.begin(), jumps.end(),
                       [&](const Jump& j) { return j.chain == chain && j.comment == comment; });
  }
  // "delete rule" commands for the jumps of `chain` tagged with `key`.
  std::string delete_jumps(const std::string& chain, const std::string& key) const {
    std::string cmds;
    for (const auto& j : jumps) {
      if (j.chain == chain && parse_tag(j.comment).key == key) {
        cmds += std::string("delete rule ") + kTable + " " + chain + " handle " +
                std::to_string(j.handle) + "\n";
      }
    }
    return cmds;
  }
  std::string delete_chain(const std::string& c) const {
    return has_chain(c) ? std::string("flush chain ") + kTable + " " + c + "\ndelete chain " +
                              kTable + " " + c + "\n"
                        : "";
  }
};

std::string base_table_commands() {
  const std::string t = kTable;
  return "add table " + t + "\n" + "add chain " + t +
         " prerouting { type nat hook prerouting priority dstnat; policy accept; }\n"
         "add chain " +
         t + " output { type nat hook output priority -100; policy accept; }\n" + "add chain " + t +
         " postrouting { type nat hook postrouting priority srcnat; policy accept; }\n" +
         "add chain " + t +
         " forward { type filter hook forward priority filter; policy accept; }\n" + "add chain " +
         t + " ports\n" + "add rule " + t + " prerouting fib daddr type local jump ports\n" +
         "add rule " + t + " output fib daddr type local jump ports\n";
}

// Every change is one listing of berth's table (only it: libnftables fetches no other table)
// and at most one batch, applied atomically. A network whose rules are in place as they would be
// written is left alone: starting a container on an existing network costs a listing, not the
// four runs (each with its cache) it used to.
class NftFirewall final : public Firewall {
 public:
  explicit NftFirewall(nft_ctx* ctx) : ctx_(ctx) {}
  ~NftFirewall() override { api().ctx_free(ctx_); }
  NftFirewall(const NftFirewall&) = delete;
  NftFirewall& operator=(const NftFirewall&) = delete;

  // Lists berth's table once: that the kernel's nf_tables answers is the probe that picks this
  // backend, and the listing serves the first change (nothing else changes the rules while the
  // host-wide lock is held). A missing table is an answer; a refusal (no nf_tables, no
  // CAP_NET_ADMIN) is the error.
  Result<void> probe() {
    auto text = run(std::string("list table ") + kTable, true);
    if (!text) {
      if (!missing_table(text.error().message())) {
        return fail(Errc::NotSupported, "the kernel refuses " + text.error().message());
      }
      cached_ = Listing{};
      return {};
    }
    BERTH_TRY(cached_, parse_listing(*text));
    return {};
  }

  Result<std::string> run(const std::string& cmds, bool json = false) {
    if (!json) {
      cached_.reset();  // a change: the next listing is read anew
    }
    api().set_flags(ctx_, json ? (NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE) : 0);
    int rc = api().run(ctx_, cmds.c_str());
    std::string out = api().output(ctx_);
    std::string err = api().error(ctx_);
    if (rc != 0) {
      while (!err.empty() && err.back() == '\n') {
        err.pop_back();
      }
      return fail(Errc::Internal, "nftables: " + err);
    }
    return out;
  }

  Result<void> add_network(const NetworkRules& n) override {
    const std::string t = kTable;
    const std::string post = n.key + "-post";
    const std::string fwd = n.key + "-fwd";
    std::string body;
    size_t post_rules = 0;
    size_t fwd_rules = 0;
    for (const auto& s : n.subnets) {
      std::string f = family_of(s);
      auto add_post = [&](const std::string& rule) {
        body += "add rule " + t + " " + post + " " + rule + "\n";
        ++post_rules;
      };
      auto add_fwd = [&](const std::string& rule) {
        body += "add rule " + t + " " + fwd + " " + rule + "\n";
        ++fwd_rules;
      };
      // Published ports reached from the host's loopback (IPv4 only: route_localnet), and
      // hairpin (a container to its own network's published port).
      if (f == "ip") {
        add_post("ip saddr 127.0.0.0/8 ip daddr " + s + " masquerade");
      }
      add_post("ct status dnat " + f + " saddr " + s + " " + f + " daddr " + s + " masquerade");
      if (n.internal) {
        add_fwd(f + " saddr " + s + " " + f + " daddr != " + s + " drop");
        add_fwd(f + " daddr " + s + " " + f + " saddr != " + s + " drop");
      } else {
        add_post(f + " saddr " + s + " " + f + " daddr != " + s + " masquerade");
        add_fwd(f + " daddr " + s + " ct state established,related accept");
        add_fwd(f + " saddr " + s + " accept");
        add_fwd(f + " daddr " + s + " ct status dnat accept");
      }
    }
    const std::string tag = network_tag(n.key, n.bridge, body);
    BERTH_TRY(Listing l, listing());
    if (l.has_jump("postrouting", tag) && l.has_jump("forward", tag) &&
        l.rules_in(post) == post_rules && l.rules_in(fwd) == fwd_rules) {
      return {};
    }
    std::string cmds = l.exists ? "" : base_table_commands();
    cmds += l.delete_jumps("postrouting", n.key) + l.delete_jumps("forward", n.key);
    cmds += "add chain " + t + " " + post + "\nflush chain " + t + " " + post + "\n" +
            "add chain " + t + " " + fwd + "\nflush chain " + t + " " + fwd + "\n" + body;
    cmds += "add rule " + t + " postrouting jump " + post + " comment \"" + tag + "\"\n";
    cmds += "add rule " + t + " forward jump " + fwd + " comment \"" + tag + "\"\n";
    BERTH_TRY(auto out, run(cmds));
    (void)out;
    return {};
  }

  Result<void> remove_network(const std::string& key) override {
    BERTH_TRY(Listing l, listing());
    return apply(l.delete_jumps("postrouting", key) + l.delete_jumps("forward", key) +
                 l.delete_chain(key + "-post") + l.delete_chain(key + "-fwd"));
  }

  // One listing, one batch: the networks on the bridge (and `key`, however it was tagged), and
  // the table itself when nothing else of berth's is left in it.
  Result<void> remove_networks_on(const std::string& bridge, const std::string& key) override {
    BERTH_TRY(Listing l, listing());
    if (!l.exists) {
      return {};
    }
    std::set<std::string> keys = {key};
    for (const auto& j : l.jumps) {
      if (auto tag = parse_tag(j.comment); tag.bridge == bridge && tag.key.starts_with("nw-")) {
        keys.insert(tag.key);
      }
    }
    bool others = false;
    for (const auto& [name, count] : l.rule_counts) {
      (void)count;
      bool ours = name.starts_with("nw-") && keys.count(name.substr(0, name.rfind('-'))) != 0;
      others = others || (!ours && (name.starts_with("nw-") || name.starts_with("ct-")));
    }
    if (!others) {
      return apply(std::string("delete table ") + kTable + "\n");
    }
    std::string cmds;
    for (const auto& k : keys) {
      cmds += l.delete_jumps("postrouting", k) + l.delete_jumps("forward", k) +
              l.delete_chain(k + "-post") + l.delete_chain(k + "-fwd");
    }
    return apply(cmds);
  }

  Result<void> add_container(const ContainerRules& c) override {
    const std::string t = kTable;
    const std::string chain = c.key + "-dnat";
    BERTH_TRY(Listing l, listing());
    std::string cmds = l.exists ? "" : base_table_commands();
    cmds += l.delete_jumps("ports", c.key);
    cmds += "add chain " + t + " " + chain + "\nflush chain " + t + " " + chain + "\n";
    for (const auto& p : c.ports) {
      bool any = p.host_ip.empty() || p.host_ip == "0.0.0.0" || p.host_ip == "::";
      bool v6_host = p.host_ip.find(':') != std::string::npos;
      for (uint32_t i = 0; i < p.range; ++i) {
        std::string port = p.protocol + " dport " + std::to_string(p.host_port + i);
        std::string to_port = std::to_string(p.container_port + i);
        if (!c.container_ip.empty() && (any || !v6_host)) {
          std::string rule = "add rule " + t + " " + chain + " meta nfproto ipv4 ";
          if (!any) {
            rule += "ip daddr " + p.host_ip + " ";
          }
          cmds += rule + port + " dnat ip to " + c.container_ip + ":" + to_port + "\n";
        }
        if (!c.container_ip6.empty() && (any || v6_host)) {
          std::string rule = "add rule " + t + " " + chain + " meta nfproto ipv6 ";
          rule += any ? "ip6 daddr != ::1 " : "ip6 daddr " + p.host_ip + " ";
          cmds += rule + port + " dnat ip6 to [" + c.container_ip6 + "]:" + to_port + "\n";
        }
      }
    }
    cmds += "add rule " + t + " ports jump " + chain + " comment \"" + c.key + "\"\n";
    BERTH_TRY(auto out, run(cmds));
    (void)out;
    return {};
  }

  Result<void> remove_container(const std::string& key) override {
    BERTH_TRY(Listing l, listing());
    return apply(l.delete_jumps("ports", key) + l.delete_chain(key + "-dnat"));
  }

  Result<void> remove_base_if_unused() override {
    BERTH_TRY(Listing l, listing());
    if (!l.exists) {
      return {};
    }
    for (const auto& [name, count] : l.rule_counts) {
      (void)count;
      if (name.starts_with("nw-") || name.starts_with("ct-")) {
        return {};
      }
    }
    return apply(std::string("delete table ") + kTable + "\n");
  }

  std::string describe() const override { return "nftables (libnftables, table inet berth)"; }

 private:
  Result<void> apply(const std::string& cmds) {
    if (cmds.empty()) {
      return {};
    }
    BERTH_TRY(auto out, run(cmds));
    (void)out;
    return {};
  }

  static bool missing_table(const std::string& error) {
    return error.find("No such file or directory") != std::string::npos;
  }

  Result<Listing> listing() {
    if (cached_) {
      Listing l = std::move(*cached_);
      cached_.reset();
      return l;
    }
    auto text = run(std::string("list table ") + kTable, true);
    if (!text) {
      if (missing_table(text.error().message())) {
        return Listing{};
      }
      return fail(std::move(text).error());
    }
    return parse_listing(*text);
  }

  static Result<Listing> parse_listing(const std::string& text) {
    Listing l;
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) {
      return fail(Errc::Internal, "nftables: unreadable JSON listing of table berth");
    }
    l.exists = true;
    for (const auto& item : j.value("nftables", nlohmann::json::array())) {
      if (item.contains("chain")) {
        l.rule_counts.emplace(item["chain"].value("name", ""), 0);
      } else if (item.contains("rule")) {
        const auto& r = item["rule"];
        std::string chain = r.value("chain", "");
        ++l.rule_counts[chain];
        if (r.contains("comment") && r["comment"].is_string()) {
          l.jumps.push_back({chain, r["comment"].get<std::string>(), r.value("handle", 0)});
        }
      }
    }
    return l;
  }

  nft_ctx* ctx_;
  std::optional<Listing> cached_;  // the probe's listing, until used or a change
};

}  // namespace

std::string nftables_missing() {
  if (!api().missing.empty()) {
    return api().missing;
  }
  nft_ctx* ctx = api().ctx_new(NFT_CTX_DEFAULT);
  if (ctx == nullptr) {
    return "libnftables cannot create a context";
  }
  NftFirewall probe(ctx);
  api().buffer_output(ctx);
  api().buffer_error(ctx);
  // Needs the kernel's nf_tables and CAP_NET_ADMIN.
  if (auto r = probe.run("list tables"); !r) {
    return "the kernel refuses nftables: " + r.error().message();
  }
  return "";
}

Result<FirewallPtr> open_nftables() {
  if (!api().missing.empty()) {
    return fail(Errc::NotSupported, "nftables: " + api().missing);
  }
  nft_ctx* ctx = api().ctx_new(NFT_CTX_DEFAULT);
  if (ctx == nullptr) {
    return fail(Errc::Internal, "nftables: cannot create a context");
  }
  api().buffer_output(ctx);
  api().buffer_error(ctx);
  auto fw = std::make_unique<NftFirewall>(ctx);
  BERTH_TRYV(fw->probe());
  return fw;
}

}  // namespace berth::firewall
