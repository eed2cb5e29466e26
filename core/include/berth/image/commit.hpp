#pragma once
// A new image from a base image plus one layer diff (`berth commit`): the container module hands
// the container layer's diff tar; this adds the layer, writes config and manifest, names it.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "berth/sdk/result.hpp"
#include "berth/store/store.hpp"

namespace berth::image {

struct CommitOptions {
  std::string base_image_id;         // the image the container was made from
  int diff_fd = -1;                  // uncompressed tar of the container layer's changes
  std::string reference;             // name to give ("" = untagged)
  std::vector<std::string> changes;  // -c/--change: "CMD [...]", "ENV A=b", "LABEL k=v", ...
  std::string message;               // -m: history comment
  std::string author;                // -a
  bool docker_format = false;        // -f docker: Docker v2s2 manifest and config media types
  // Fields of the container's configuration applied to the image's "config" object before the
  // --change instructions (Podman commits the container's Cmd, Entrypoint, Env, ...).
  nlohmann::json config_overrides = nlohmann::json::object();
  std::string created_by;  // history created_by ("" = none)
};

// Returns the new image's id. Nothing half-made stays on failure.
Result<std::string> commit_image(store::Store& store, const CommitOptions& opts);

}  // namespace berth::image
