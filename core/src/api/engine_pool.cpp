// The service's engines: opened once and lent to one request at a time.
#include "berth/api/service.hpp"
#include "berth/engine/engine.hpp"
#include "berth/util/log.hpp"

namespace berth::api {
namespace {
// Idle engines kept beyond this are closed: a burst of long streams (logs -f, wait) should not
// leave dozens of open stores behind.
constexpr size_t kMaxIdleEngines = 16;
}  // namespace

EngineLease::~EngineLease() {
  if (eng_ && owner_ != nullptr) {
    owner_->give_back(std::move(eng_));
  }
}

ServiceContext::~ServiceContext() = default;

Result<EngineLease> ServiceContext::open_engine() const {
  {
    std::lock_guard g(mu_);
    if (!idle_.empty()) {
      auto e = std::move(idle_.back());
      idle_.pop_back();
      return EngineLease(std::move(e), this);
    }
  }
  BERTH_TRY(auto eng, engine::Engine::open(opts_.overrides));
  // Initialise what every request would otherwise initialise lazily, here on one thread: the
  // plugin registry and the store, read-write (a store first opened read-only would stay so).
  (void)eng->plugins();
  if (auto st = eng->store(false); !st) {
    // Left to the request that needs the store: it reports the same error with its context.
    spdlog::debug("API: engine warm-up: {}", st.error().message());
  }
  {
    std::lock_guard g(mu_);
    ++created_;
  }
  return EngineLease(std::move(eng), this);
}

size_t ServiceContext::engines_created() const {
  std::lock_guard g(mu_);
  return created_;
}

void ServiceContext::give_back(std::unique_ptr<engine::Engine> eng) const {
  std::lock_guard g(mu_);
  if (idle_.size() < kMaxIdleEngines) {
    idle_.push_back(std::move(eng));
  }
}

}  // namespace berth::api
