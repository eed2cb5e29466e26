#pragma once
// Internal: values flowing through template execution, and the function table.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "berth/sdk/result.hpp"

namespace berth::format::detail {

// A value during execution: a reference into the data (no copy) or an owned result of a
// function. An empty Val is Go's invalid reflect.Value: a missing key, printed "<no value>".
class Val {
 public:
  Val() = default;
  static Val ref(const nlohmann::json& j) {
    Val v;
    v.p_ = &j;
    return v;
  }
  static Val make(nlohmann::json j) {
    Val v;
    v.own_ = std::make_shared<const nlohmann::json>(std::move(j));
    v.p_ = v.own_.get();
    return v;
  }
  // A value inside this one, sharing ownership when this one is owned.
  Val child(const nlohmann::json& c) const {
    Val v = *this;
    v.p_ = &c;
    return v;
  }
  bool valid() const { return p_ != nullptr; }
  const nlohmann::json& j() const { return *p_; }
  const nlohmann::json* ptr() const { return p_; }

 private:
  const nlohmann::json* p_ = nullptr;
  std::shared_ptr<const nlohmann::json> own_;
};

// Go's truth: false, 0, "", nil, empty array/object and missing values are false.
bool truth(const Val& v);

// Calls a function other than and/or (which the executor short-circuits). Errors are the bare
// problem ("wrong number of args for len: want 1 got 2"); the executor adds the position.
Result<Val> call_function(std::string_view name, const std::vector<Val>& args);

}  // namespace berth::format::detail
