#pragma once
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "berth/store/store.hpp"
#include "fakes/fake_storage_driver.hpp"

namespace berth::testing {

// A temporary store root: graph/, run/, and the fake driver's home.
class TempStore : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-image-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    driver_ = std::make_unique<FakeStorageDriver>(root_ / "driver");
    store_ = open_store(*driver_);
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  store::StoreOptions options(const std::string& sub = "") const {
    store::StoreOptions o;
    o.graph_root = (root_ / (sub + "graph")).string();
    o.run_root = (root_ / (sub + "run")).string();
    return o;
  }
  store::StorePtr open_store(sdk::StorageDriver& d, const std::string& sub = "") {
    auto s = store::Store::open(options(sub), d);
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message());
    return s ? std::move(*s) : nullptr;
  }
  std::filesystem::path root_;
  std::unique_ptr<FakeStorageDriver> driver_;
  store::StorePtr store_;
};

}  // namespace berth::testing
