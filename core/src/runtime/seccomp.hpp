#pragma once
// Seccomp: the spec's linux.seccomp compiled to BPF with libseccomp once per profile (cached on
// disk), loaded in the child with one seccomp(2) call.
#include <linux/filter.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "berth/sdk/result.hpp"

namespace berth::runtime {

using SeccompProgram = std::vector<sock_filter>;

Result<SeccompProgram> compile_seccomp(const nlohmann::json& seccomp);
// compile_seccomp() with a cache under `cache_dir`, keyed by a hash of the profile and checked
// against the profile text it stores.
Result<SeccompProgram> compile_seccomp_cached(const nlohmann::json& seccomp,
                                              const std::string& cache_dir);
// Installs the filter in the calling thread (child side). Needs no_new_privs or CAP_SYS_ADMIN.
Result<void> load_seccomp(const SeccompProgram& program);

}  // namespace berth::runtime
