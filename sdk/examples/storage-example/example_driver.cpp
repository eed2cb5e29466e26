// An example berth storage driver, kept small to read as documentation.
//
// Every layer is a full copy of its parent (like vfs), laid out under the driver's home as
//   layers/<id>/root     the layer's tree, which mount() returns
//   layers/<id>/parent   the parent's id, "" for a base layer
// Unlike vfs it keeps mount counts in memory only (one process per store), and it refuses to
// remove a layer that still has children (Conflict), so the core must remove children first.
//
// What a plugin needs: a class implementing berth::sdk::StorageDriver, a factory with the
// signature of berth::sdk::StorageFactory, and one BERTH_DECLARE_PLUGIN(factory) line. The SDK's
// layer_archive helpers (extract_layer, copy_tree, tree_usage) do the hard, security-sensitive
// parts, so every driver refuses hostile archives the same way.
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <system_error>

#include "berth/sdk/layer_archive.hpp"
#include "berth/sdk/plugin.hpp"
#include "berth/sdk/storage.hpp"

namespace example {

namespace fs = std::filesystem;
using berth::Errc;
using berth::fail;
using berth::Result;
namespace sdk = berth::sdk;

// Converts a std::filesystem error into a berth::Error naming the operation and the path.
std::unexpected<berth::Error> fs_error(const std::string& op, const fs::path& p,
                                       const std::error_code& ec) {
  return berth::fail_errno("example: " + op, p.string(), ec.value());
}

class ExampleDriver final : public sdk::StorageDriver {
 public:
  explicit ExampleDriver(fs::path home) : layers_(std::move(home) / "layers") {}

  std::string name() const override { return "example"; }
  sdk::ProbeResult probe() override { return {true, "copies layers; works on any filesystem"}; }
  sdk::WhiteoutFormat whiteout_format() const override { return sdk::WhiteoutFormat::Delete; }

  Result<void> create(const std::string& id, const std::string& parent,
                      const sdk::CreateOptions& /*opts*/) override {
    BERTH_TRYV(check_id(id));
    if (exists(id)) {
      return fail(Errc::AlreadyExists, "example: layer " + id + " already exists");
    }
    if (!parent.empty() && !exists(parent)) {
      return fail(Errc::NotFound, "example: create " + id + ": parent " + parent + " not found");
    }
    // Build the layer in a temporary directory and rename it into place, so that a crash never
    // leaves a half-copied layer under its real name.
    std::string tmp = (layers_ / (".tmp-" + id + "-XXXXXX")).string();
    if (::mkdtemp(tmp.data()) == nullptr) {
      return berth::fail_errno("example: mkdtemp", tmp);
    }
    auto built = fill(tmp, parent);
    std::error_code ec;
    if (built) {
      fs::rename(tmp, layers_ / id, ec);
      if (ec) {
        built = fs_error("rename " + tmp + " to", layers_ / id, ec);
      }
    }
    if (!built) {
      fs::remove_all(tmp, ec);
    }
    return built;
  }

  Result<void> remove(const std::string& id) override {
    BERTH_TRYV(check_id(id));
    if (!exists(id)) {
      return {};  // idempotent
    }
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(layers_, ec)) {
      if (!entry.path().filename().string().starts_with(".") &&
          parent_of(entry.path().filename().string()) == id) {
        return fail(Errc::Conflict, "example: layer " + id + " has a child layer " +
                                        entry.path().filename().string() + "; remove it first");
      }
    }
    {
      std::lock_guard lock(mu_);
      if (mounts_[id] > 0) {
        return fail(Errc::Busy, "example: layer " + id + " is mounted; unmount it first");
      }
      mounts_.erase(id);
    }
    fs::remove_all(layers_ / id, ec);
    if (ec) {
      return fs_error("remove", layers_ / id, ec);
    }
    return {};
  }

  bool exists(const std::string& id) override {
    std::error_code ec;
    return check_id(id) && fs::is_directory(layers_ / id / "root", ec);
  }

  Result<std::string> mount(const std::string& id, const sdk::MountOptions& /*opts*/) override {
    BERTH_TRY(fs::path root, root_of(id));
    std::lock_guard lock(mu_);
    ++mounts_[id];
    return root.string();
  }

  Result<void> unmount(const std::string& id) override {
    BERTH_TRYV(root_of(id));
    std::lock_guard lock(mu_);
    if (mounts_[id] > 0) {  // unmounting what is not mounted changes nothing
      --mounts_[id];
    }
    return {};
  }

  Result<std::string> layer_path(const std::string& id) override {
    BERTH_TRY(fs::path root, root_of(id));
    return root.string();
  }

  Result<uint64_t> apply_diff(const std::string& id, int tar_fd,
                              const sdk::ApplyOptions& opts) override {
    BERTH_TRY(fs::path root, root_of(id));
    sdk::ExtractOptions x;
    x.whiteouts = sdk::WhiteoutFormat::Delete;  // every layer is complete: delete, don't mark
    x.allow_devices = opts.allow_devices;
    x.uid_shift = opts.uid_shift;
    x.gid_shift = opts.gid_shift;
    auto stats = sdk::extract_layer(tar_fd, root, x);
    if (!stats) {
      return fail(std::move(stats).error().wrap("example: apply diff to layer " + id));
    }
    return stats->bytes;
  }

  Result<sdk::LayerUsage> usage(const std::string& id) override {
    BERTH_TRY(fs::path root, root_of(id));
    return sdk::tree_usage(root);
  }
  // diff() and changes() keep their NotSupported defaults: the core falls back to a naive diff.

 private:
  static Result<void> check_id(const std::string& id) {
    if (id.empty() || id.starts_with(".") || id.find('/') != std::string::npos) {
      return fail(Errc::InvalidArgument, "example: invalid layer id '" + id + "'");
    }
    return {};
  }

  Result<fs::path> root_of(const std::string& id) {
    if (!exists(id)) {
      return fail(Errc::NotFound, "example: layer '" + id + "' not found");
    }
    return layers_ / id / "root";
  }

  std::string parent_of(const std::string& id) {
    std::ifstream in(layers_ / id / "parent");
    std::string parent;
    std::getline(in, parent);
    return parent;
  }

  // Fills a new layer directory: root/ (a copy of the parent's root) and the parent record.
  Result<void> fill(const fs::path& dir, const std::string& parent) {
    std::error_code ec;
    fs::create_directory(dir / "root", ec);
    if (ec) {
      return fs_error("mkdir", dir / "root", ec);
    }
    if (!parent.empty()) {
      BERTH_TRYV(sdk::copy_tree(layers_ / parent / "root", dir / "root"));
    }
    std::ofstream out(dir / "parent");
    out << parent;
    out.close();
    if (!out) {
      return fail(Errc::Internal, "example: cannot write " + (dir / "parent").string());
    }
    return {};
  }

  fs::path layers_;
  std::mutex mu_;
  std::map<std::string, int> mounts_;
};

// The factory berth calls once per driver instance.
Result<sdk::StorageDriverPtr> create_driver(const sdk::PluginContext& ctx) {
  if (ctx.home.empty()) {
    return fail(Errc::InvalidArgument, "example: the driver needs a home directory");
  }
  std::error_code ec;
  fs::create_directories(fs::path(ctx.home) / "layers", ec);
  if (ec) {
    return fs_error("create", fs::path(ctx.home) / "layers", ec);
  }
  return std::make_unique<ExampleDriver>(ctx.home);
}

}  // namespace example

// Exports the descriptor (name, version, ... from berth_add_plugin) and the factory.
BERTH_DECLARE_PLUGIN(example::create_driver);
