#pragma once
// The parts of an OCI runtime spec (config.json) the native runtime acts on, parsed before clone()
// so the child only does syscalls.
#include <sys/capability.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "berth/sdk/result.hpp"

namespace berth::runtime {

struct MountSpec {
  std::string destination;
  std::string type;
  std::string source;
  std::string data;               // options the kernel parses (mode=755, size=...)
  unsigned long flags = 0;        // MS_* flags set
  unsigned long clear_flags = 0;  // MS_* flags explicitly cleared (rw, suid...)
  unsigned long propagation = 0;  // MS_PRIVATE / MS_SLAVE / MS_SHARED / MS_UNBINDABLE (+MS_REC)
  bool bind = false;
  bool tmpcopyup = false;  // tmpfs: the rootfs content at the destination copied in (crun, runc)
  // "rro" (runc, crun): read-only with every submount too (mount_setattr(2), AT_RECURSIVE);
  // an error when the kernel cannot.
  bool recursive_readonly = false;
};

struct RlimitSpec {
  int resource = 0;
  std::string name;
  rlim_t soft = 0;
  rlim_t hard = 0;
};

struct CapabilitySpec {
  bool present = false;
  std::vector<cap_value_t> bounding, effective, permitted, inheritable, ambient;
};

struct ProcessSpec {
  bool terminal = false;
  // process.consoleSize: the pty's size before the process runs (0: the kernel's 0x0).
  unsigned short console_height = 0;
  unsigned short console_width = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  CapabilitySpec caps;
  bool no_new_privileges = false;
  std::vector<RlimitSpec> rlimits;
  std::optional<int> oom_score_adj;
};

struct NamespaceSpec {
  int flag = 0;  // CLONE_NEW*
  std::string type;
  std::string path;
};

struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t size = 0;
};

struct DeviceSpec {
  std::string path;
  char type = 'c';
  unsigned major = 0;
  unsigned minor = 0;
  mode_t mode = 0666;
  uid_t uid = 0;
  gid_t gid = 0;
};

struct ContainerSpec {
  std::string rootfs;  // absolute
  bool root_readonly = false;
  ProcessSpec process;
  std::string hostname;
  std::string domainname;
  std::vector<MountSpec> mounts;
  std::vector<NamespaceSpec> namespaces;
  std::vector<IdMapping> uid_mappings;
  std::vector<IdMapping> gid_mappings;
  std::vector<DeviceSpec> devices;
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  std::vector<std::pair<std::string, std::string>> sysctls;
  std::string cgroups_path;
  nlohmann::json resources = nlohmann::json::object();
  std::optional<nlohmann::json> seccomp;
  unsigned long rootfs_propagation = 0;  // 0: MS_SLAVE | MS_REC, as runc
  bool has_namespace(int flag) const;
  const NamespaceSpec* find_namespace(int flag) const;
};

Result<ContainerSpec> parse_container_spec(const nlohmann::json& config, const std::string& bundle);
Result<ProcessSpec> parse_process_spec(const nlohmann::json& process);
// Splits OCI mount options into MS_* flags, propagation and kernel data.
void parse_mount_options(const std::vector<std::string>& options, MountSpec& out);

}  // namespace berth::runtime
