#include "firewall.hpp"

#include <fcntl.h>
#include <nftables/libnftables.h>
#include <sys/file.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <utility>

namespace berth::firewall {

namespace {
constexpr const char* kTable = "inet berth";
}

Result<Firewall> Firewall::open(const std::string& lock_file) {
  Firewall f;
  f.lock_fd_ = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (f.lock_fd_ < 0) {
    return fail_errno("open lock file", lock_file);
  }
  while (::flock(f.lock_fd_, LOCK_EX) != 0) {
    if (errno != EINTR) {
      return fail_errno("lock", lock_file);
    }
  }
  f.ctx_ = nft_ctx_new(NFT_CTX_DEFAULT);
  if (f.ctx_ == nullptr) {
    return fail(Errc::Internal, "nftables: cannot create a context");
  }
  nft_ctx_buffer_output(f.ctx_);
  nft_ctx_buffer_error(f.ctx_);
  return f;
}

Firewall::Firewall(Firewall&& o) noexcept
    : ctx_(std::exchange(o.ctx_, nullptr)), lock_fd_(std::exchange(o.lock_fd_, -1)) {}

Firewall::~Firewall() {
  if (ctx_ != nullptr) {
    nft_ctx_free(ctx_);
  }
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);
  }
}

Result<std::string> Firewall::run(const std::string& cmds, bool json) {
  nft_ctx_output_set_flags(ctx_, json ? (NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE) : 0);
  int rc = nft_run_cmd_from_buffer(ctx_, cmds.c_str());
  std::string out = nft_ctx_get_output_buffer(ctx_);
  std::string err = nft_ctx_get_error_buffer(ctx_);
  if (rc != 0) {
    while (!err.empty() && err.back() == '\n') {
      err.pop_back();
    }
    return fail(Errc::Internal, "nftables: " + err);
  }
  return out;
}

Result<void> Firewall::ensure_table() {
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

Result<std::vector<std::string>> Firewall::chains() {
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

Result<void> Firewall::delete_jumps(const std::string& chain, const std::string& comment) {
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

Result<void> Firewall::add_network(const NetworkRules& n) {
  BERTH_TRYV(ensure_table());
  BERTH_TRYV(delete_jumps("postrouting", n.key));
  BERTH_TRYV(delete_jumps("forward", n.key));
  std::string t = kTable;
  std::string post = n.key + "-post";
  std::string fwd = n.key + "-fwd";
  std::string s = n.subnet;
  std::string cmds = "add chain " + t + " " + post + "\nflush chain " + t + " " + post + "\n" +
                     "add chain " + t + " " + fwd + "\nflush chain " + t + " " + fwd + "\n";
  // Published ports reached from the host's loopback, and hairpin (a container to its own
  // network's published port).
  cmds += "add rule " + t + " " + post + " ip saddr 127.0.0.0/8 ip daddr " + s + " masquerade\n";
  cmds += "add rule " + t + " " + post + " ct status dnat ip saddr " + s + " ip daddr " + s +
          " masquerade\n";
  if (n.internal) {
    cmds += "add rule " + t + " " + fwd + " ip saddr " + s + " ip daddr != " + s + " drop\n";
    cmds += "add rule " + t + " " + fwd + " ip daddr " + s + " ip saddr != " + s + " drop\n";
  } else {
    cmds += "add rule " + t + " " + post + " ip saddr " + s + " ip daddr != " + s + " masquerade\n";
    cmds +=
        "add rule " + t + " " + fwd + " ip daddr " + s + " ct state established,related accept\n";
    cmds += "add rule " + t + " " + fwd + " ip saddr " + s + " accept\n";
    cmds += "add rule " + t + " " + fwd + " ip daddr " + s + " ct status dnat accept\n";
  }
  cmds += "add rule " + t + " postrouting jump " + post + " comment \"" + n.key + "\"\n";
  cmds += "add rule " + t + " forward jump " + fwd + " comment \"" + n.key + "\"\n";
  BERTH_TRY(auto out, run(cmds));
  (void)out;
  return {};
}

Result<void> Firewall::remove_network(const std::string& key) {
  BERTH_TRYV(delete_jumps("postrouting", key));
  BERTH_TRYV(delete_jumps("forward", key));
  BERTH_TRY(auto names, chains());
  std::string cmds;
  for (const auto& suffix : {"-post", "-fwd"}) {
    std::string c = key + suffix;
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

Result<void> Firewall::add_container(const ContainerRules& c) {
  BERTH_TRYV(ensure_table());
  BERTH_TRYV(delete_jumps("ports", c.key));
  std::string t = kTable;
  std::string chain = c.key + "-dnat";
  std::string cmds = "add chain " + t + " " + chain + "\nflush chain " + t + " " + chain + "\n";
  for (const auto& p : c.ports) {
    for (uint32_t i = 0; i < p.range; ++i) {
      std::string rule = "add rule " + t + " " + chain + " meta nfproto ipv4 ";
      if (!p.host_ip.empty() && p.host_ip != "0.0.0.0") {
        rule += "ip daddr " + p.host_ip + " ";
      }
      rule += p.protocol + " dport " + std::to_string(p.host_port + i) + " dnat ip to " +
              c.container_ip + ":" + std::to_string(p.container_port + i) + "\n";
      cmds += rule;
    }
  }
  cmds += "add rule " + t + " ports jump " + chain + " comment \"" + c.key + "\"\n";
  BERTH_TRY(auto out, run(cmds));
  (void)out;
  return {};
}

Result<void> Firewall::remove_container(const std::string& key) {
  BERTH_TRYV(delete_jumps("ports", key));
  BERTH_TRY(auto names, chains());
  std::string c = key + "-dnat";
  if (std::find(names.begin(), names.end(), c) != names.end()) {
    BERTH_TRY(auto out, run(std::string("flush chain ") + kTable + " " + c + "\ndelete chain " +
                            kTable + " " + c + "\n"));
    (void)out;
  }
  return {};
}

Result<void> Firewall::remove_table_if_unused() {
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

}  // namespace berth::firewall
