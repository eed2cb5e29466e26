// The nftables backend: libnftables loaded with dlopen, so a host without it (or whose kernel
// has no nf_tables) still loads the plugin and falls back to iptables.
#include <dlfcn.h>
#include <nftables/libnftables.h>

#include <algorithm>
#include <nlohmann/json.hpp>

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

class NftFirewall final : public Firewall {
 public:
  explicit NftFirewall(nft_ctx* ctx) : ctx_(ctx) {}
  ~NftFirewall() override { api().ctx_free(ctx_); }
  NftFirewall(const NftFirewall&) = delete;
  NftFirewall& operator=(const NftFirewall&) = delete;

  Result<std::string> run(const std::string& cmds, bool json = false) {
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
    BERTH_TRYV(ensure_table());
    BERTH_TRYV(delete_jumps("postrouting", n.key));
    BERTH_TRYV(delete_jumps("forward", n.key));
    std::string t = kTable;
    std::string post = n.key + "-post";
    std::string fwd = n.key + "-fwd";
    std::string cmds = "add chain " + t + " " + post + "\nflush chain " + t + " " + post + "\n" +
                       "add chain " + t + " " + fwd + "\nflush chain " + t + " " + fwd + "\n";
    for (const auto& s : n.subnets) {
      std::string f = family_of(s);
      std::string pre_post = "add rule " + t + " " + post + " ";
      std::string pre_fwd = "add rule " + t + " " + fwd + " ";
      // Published ports reached from the host's loopback (IPv4 only: route_localnet), and
      // hairpin (a container to its own network's published port).
      if (f == "ip") {
        cmds += pre_post + "ip saddr 127.0.0.0/8 ip daddr " + s + " masquerade\n";
      }
      cmds += pre_post + "ct status dnat " + f + " saddr " + s + " " + f + " daddr " + s +
              " masquerade\n";
      if (n.internal) {
        cmds += pre_fwd + f + " saddr " + s + " " + f + " daddr != " + s + " drop\n";
        cmds += pre_fwd + f + " daddr " + s + " " + f + " saddr != " + s + " drop\n";
      } else {
        cmds += pre_post + f + " saddr " + s + " " + f + " daddr != " + s + " masquerade\n";
        cmds += pre_fwd + f + " daddr " + s + " ct state established,related accept\n";
        cmds += pre_fwd + f + " saddr " + s + " accept\n";
        cmds += pre_fwd + f + " daddr " + s + " ct status dnat accept\n";
      }
    }
    cmds += "add rule " + t + " postrouting jump " + post + " comment \"" + n.key + "\"\n";
    cmds += "add rule " + t + " forward jump " + fwd + " comment \"" + n.key + "\"\n";
    BERTH_TRY(auto out, run(cmds));
    (void)out;
    return {};
  }

  Result<void> remove_network(const std::string& key) override {
    BERTH_TRYV(delete_jumps("postrouting", key));
    BERTH_TRYV(delete_jumps("forward", key));
    return delete_chains({key + "-post", key + "-fwd"});
  }

  Result<void> add_container(const ContainerRules& c) override {
    BERTH_TRYV(ensure_table());
    BERTH_TRYV(delete_jumps("ports", c.key));
    std::string t = kTable;
    std::string chain = c.key + "-dnat";
    std::string cmds = "add chain " + t + " " + chain + "\nflush chain " + t + " " + chain + "\n";
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
    BERTH_TRYV(delete_jumps("ports", key));
    return delete_chains({key + "-dnat"});
  }

  Result<void> remove_base_if_unused() override {
    BERTH_TRY(auto names, chains());
    if (names.empty()) {
      return {};
    }
    for (const auto& n : names) {
      if (n.starts_with("nw-") || n.starts_with("ct-")) {
        return {};
      }
    }
    BERTH_TRY(auto out, run(std::string("delete table ") + kTable));
    (void)out;
    return {};
  }

  std::string describe() const override { return "nftables (libnftables, table inet berth)"; }

 private:
  Result<void> ensure_table() {
    if (run(std::string("list table ") + kTable).has_value()) {
      return {};
    }
    std::string t = kTable;
    BERTH_TRY(auto out,
              run("add table " + t + "\n" + "add chain " + t +
                  " prerouting { type nat hook prerouting priority dstnat; policy accept; }\n"
                  "add chain " +
                  t +
                  " output { type nat hook output priority -100; policy accept; }\n"
                  "add chain " +
                  t +
                  " postrouting { type nat hook postrouting priority srcnat; policy accept; }\n"
                  "add chain " +
                  t +
                  " forward { type filter hook forward priority filter; policy accept; }\n"
                  "add chain " +
                  t +
                  " ports\n"
                  "add rule " +
                  t +
                  " prerouting fib daddr type local jump ports\n"
                  "add rule " +
                  t + " output fib daddr type local jump ports\n"));
    (void)out;
    return {};
  }

  Result<std::vector<std::string>> chains() {
    std::vector<std::string> out;
    auto text = run(std::string("list table ") + kTable, true);
    if (!text) {
      return out;  // no table: no chains
    }
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded()) {
      return fail(Errc::Internal, "nftables: unreadable JSON listing of table berth");
    }
    for (const auto& item : j.value("nftables", nlohmann::json::array())) {
      if (item.contains("chain")) {
        out.push_back(item["chain"].value("name", ""));
      }
    }
    return out;
  }

  Result<void> delete_chains(const std::vector<std::string>& wanted) {
    BERTH_TRY(auto names, chains());
    std::string cmds;
    for (const auto& c : wanted) {
      if (std::find(names.begin(), names.end(), c) != names.end()) {
        cmds += std::string("flush chain ") + kTable + " " + c + "\ndelete chain " + kTable + " " +
                c + "\n";
      }
    }
    if (!cmds.empty()) {
      BERTH_TRY(auto out, run(cmds));
      (void)out;
    }
    return {};
  }

  Result<void> delete_jumps(const std::string& chain, const std::string& comment) {
    auto text = run(std::string("list chain ") + kTable + " " + chain, true);
    if (!text) {
      return {};  // no chain, no rule
    }
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded()) {
      return fail(Errc::Internal, "nftables: unreadable JSON listing of chain " + chain);
    }
    std::string cmds;
    for (const auto& item : j.value("nftables", nlohmann::json::array())) {
      if (item.contains("rule") && item["rule"].value("comment", "") == comment) {
        cmds += std::string("delete rule ") + kTable + " " + chain + " handle " +
                std::to_string(item["rule"].value("handle", 0)) + "\n";
      }
    }
    if (!cmds.empty()) {
      BERTH_TRY(auto out, run(cmds));
      (void)out;
    }
    return {};
  }

  nft_ctx* ctx_;
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
  return std::make_unique<NftFirewall>(ctx);
}

}  // namespace berth::firewall
