// Choosing the firewall backend, and the host-wide lock around it.
#include "firewall.hpp"

#include <fcntl.h>
#include <sys/file.h>

#include <cstdio>
#include <functional>

#include "berth/sdk/unique_fd.hpp"

namespace berth::firewall {

namespace {

// No rules: firewall_driver = "none", the admin's firewall does NAT and forwarding.
class NoFirewall final : public Firewall {
 public:
  Result<void> add_network(const NetworkRules&) override { return {}; }
  Result<void> remove_network(const std::string&) override { return {}; }
  Result<void> remove_networks_on(const std::string&, const std::string&) override { return {}; }
  Result<void> add_container(const ContainerRules&) override { return {}; }
  Result<void> remove_container(const std::string&) override { return {}; }
  Result<void> remove_base_if_unused() override { return {}; }
  std::string describe() const override {
    return "none (firewall_driver = \"none\": no NAT or published ports)";
  }
};

// A backend used under the host-wide lock, released when it goes.
class Locked final : public Firewall {
 public:
  Locked(UniqueFd lock, FirewallPtr inner) : lock_(std::move(lock)), inner_(std::move(inner)) {}
  Result<void> add_network(const NetworkRules& n) override { return inner_->add_network(n); }
  Result<void> remove_network(const std::string& k) override { return inner_->remove_network(k); }
  Result<void> remove_networks_on(const std::string& b, const std::string& k) override {
    return inner_->remove_networks_on(b, k);
  }
  Result<void> add_container(const ContainerRules& c) override { return inner_->add_container(c); }
  Result<void> remove_container(const std::string& k) override {
    return inner_->remove_container(k);
  }
  Result<void> remove_base_if_unused() override { return inner_->remove_base_if_unused(); }
  std::string describe() const override { return inner_->describe(); }

 private:
  UniqueFd lock_;
  FirewallPtr inner_;
};

// "" resolved: nftables where it works, else iptables.
std::string resolve(const std::string& driver, std::string* why) {
  if (!driver.empty()) {
    if (why != nullptr) {
      *why = "firewall_driver in containers.conf";
    }
    return driver;
  }
  std::string nft = nftables_missing();
  if (nft.empty()) {
    if (why != nullptr) {
      *why = "default";
    }
    return "nftables";
  }
  if (why != nullptr) {
    *why = nft;
  }
  return "iptables";
}

}  // namespace

std::string network_tag(const std::string& key, const std::string& bridge,
                        const std::string& rules) {
  char sig[16];
  std::snprintf(sig, sizeof(sig), "%08zx", std::hash<std::string>{}(rules)&0xffffffffu);
  return key + "@" + bridge + "/" + sig;
}

Tag parse_tag(const std::string& comment) {
  Tag t;
  auto at = comment.find('@');
  t.key = comment.substr(0, at);
  if (at != std::string::npos) {
    t.bridge = comment.substr(at + 1, comment.find('/', at) - at - 1);
  }
  return t;
}

Result<UniqueFd> lock_firewall(const std::string& lock_file) {
  UniqueFd lock(::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock) {
    return fail_errno("open lock file", lock_file);
  }
  while (::flock(lock.get(), LOCK_EX) != 0) {
    if (errno != EINTR) {
      return fail_errno("lock", lock_file);
    }
  }
  return lock;
}

Result<FirewallPtr> open_firewall(const std::string& driver, const std::string& lock_file) {
  BERTH_TRY(UniqueFd lock, lock_firewall(lock_file));
  BERTH_TRY(FirewallPtr inner, open_backend(driver));
  return std::make_unique<Locked>(std::move(lock), std::move(inner));
}

Result<FirewallPtr> open_backend(const std::string& driver) {
  if (driver != "" && driver != "nftables" && driver != "iptables" && driver != "none") {
    return fail(Errc::InvalidArgument, "firewall_driver \"" + driver +
                                           "\" is not supported (use nftables, iptables or none "
                                           "in containers.conf)");
  }
  // The default tries nftables first; opening it is the probe (one listing of berth's table,
  // kept for the first change), so no separate context and listing just to choose.
  std::string why;
  FirewallPtr inner;
  if (driver.empty()) {
    auto nft = open_nftables();
    if (nft) {
      return std::move(*nft);
    }
    why = nft.error().message();
  }
  if (driver == "none") {
    inner = std::make_unique<NoFirewall>();
  } else if (driver == "nftables") {
    BERTH_TRY(inner, open_nftables());
  } else {
    auto r = open_iptables();
    if (!r) {
      if (driver.empty()) {
        return fail(std::move(r).error().wrap("no firewall backend: nftables cannot be used (" +
                                              why + ") and iptables neither"));
      }
      return fail(std::move(r).error());
    }
    inner = std::move(*r);
  }
  return inner;
}

std::string probe_description(const std::string& driver) {
  std::string why;
  std::string chosen = resolve(driver, &why);
  std::string text;
  if (chosen == "nftables") {
    text = "nftables (libnftables, table inet berth)";
  } else if (chosen == "iptables") {
    text = "iptables (iptables-restore, chains BERTH-PORTS, nw-*, ct-*)";
  } else {
    text = chosen;
  }
  return text + (why == "default" ? "" : "; " + why);
}

}  // namespace berth::firewall
