#pragma once
// berth.verifier.v1: one cryptographic check of an image signature. policy.json evaluation lives in
// the core; a verifier answers for one requirement.
#include <memory>
#include <string>

#include "berth/sdk/plugin.hpp"
#include "berth/sdk/result.hpp"

namespace berth::sdk {

enum class Verdict { Accepted, Rejected, Unknown };

struct VerifyRequest {
  std::string signature;         // raw signature bytes
  std::string requirement_json;  // the policy.json requirement object
  std::string manifest_digest;
  std::string docker_reference;
};

struct VerifyResult {
  Verdict verdict = Verdict::Unknown;
  std::string identity;
  std::string reason;
};

class BERTH_EXPORT Verifier {
 public:
  static constexpr const char* kKind = BERTH_KIND_verifier;
  virtual ~Verifier() = default;
  virtual std::string name() const = 0;  // the policy.json requirement type it serves
  virtual Result<VerifyResult> verify(const VerifyRequest& req) = 0;
};
using VerifierPtr = std::unique_ptr<Verifier>;
using VerifierFactory = Result<VerifierPtr>(const PluginContext&);

}  // namespace berth::sdk
