#pragma once
// Builds small OCI and docker archives in memory for the image tests (libarchive writer).
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "berth/image/manifest.hpp"
#include "berth/util/digest.hpp"

namespace berth::testing {

struct TarFile {
  std::string name;
  std::string content;
  char type = '0';  // '0' file, '5' dir
};

inline std::string make_tar(const std::vector<TarFile>& files, bool gzip = false) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) {
    archive_write_add_filter_gzip(a);
  }
  archive_write_set_bytes_in_last_block(a, 1);
  std::vector<char> buf(64 << 20);
  size_t used = 0;
  EXPECT_EQ(archive_write_open_memory(a, buf.data(), buf.size(), &used), ARCHIVE_OK);
  for (auto& f : files) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, f.name.c_str());
    archive_entry_set_mtime(e, 1700000000, 0);
    if (f.type == '5') {
      archive_entry_set_filetype(e, AE_IFDIR);
      archive_entry_set_perm(e, 0755);
      archive_entry_set_size(e, 0);
    } else {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_perm(e, 0644);
      archive_entry_set_size(e, static_cast<la_int64_t>(f.content.size()));
    }
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK);
    if (!f.content.empty()) {
      archive_write_data(a, f.content.data(), f.content.size());
    }
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return std::string(buf.data(), used);
}

inline std::string gunzip_like_digest(const std::string&) {
  return {};
}

struct TestLayer {
  std::vector<TarFile> files;
  bool gzip = true;
  std::string blob;     // compressed as stored
  std::string tar;      // uncompressed
  std::string digest;   // of blob
  std::string diff_id;  // of tar
};

inline TestLayer make_layer(std::vector<TarFile> files, bool gzip = true) {
  TestLayer l;
  l.files = std::move(files);
  l.gzip = gzip;
  l.tar = make_tar(l.files, false);
  l.blob = gzip ? make_tar(l.files, true) : l.tar;
  l.digest = util::sha256_digest(l.blob);
  l.diff_id = util::sha256_digest(l.tar);
  return l;
}

inline std::string make_config(const std::vector<TestLayer>& layers, const std::string& marker,
                               const nlohmann::json& labels = nullptr) {
  nlohmann::json diff = nlohmann::json::array();
  nlohmann::json hist = nlohmann::json::array();
  for (auto& l : layers) {
    diff.push_back(l.diff_id);
    hist.push_back({{"created", "2024-01-02T03:04:05Z"}, {"created_by", "ADD " + marker}});
  }
  nlohmann::json cfg = {{"architecture", "amd64"},
                        {"os", "linux"},
                        {"created", "2024-01-02T03:04:05Z"},
                        {"config", {{"Cmd", {"/bin/sh"}}, {"Env", {"PATH=/bin"}}}},
                        {"rootfs", {{"type", "layers"}, {"diff_ids", diff}}},
                        {"history", hist}};
  if (!labels.is_null()) {
    cfg["config"]["Labels"] = labels;
  }
  cfg["config"]["Labels"]["marker"] = marker;
  return cfg.dump();
}

// An OCI archive: oci-layout, index.json (with ref.name when given), blobs.
inline std::string make_oci_archive(const std::vector<TestLayer>& layers, const std::string& config,
                                    const std::string& ref_name,
                                    std::string* manifest_out = nullptr,
                                    const std::string& tamper_layer_digest = {}) {
  nlohmann::json m = {{"schemaVersion", 2},
                      {"mediaType", image::media::kOciManifest},
                      {"config",
                       {{"mediaType", image::media::kOciConfig},
                        {"digest", util::sha256_digest(config)},
                        {"size", config.size()}}},
                      {"layers", nlohmann::json::array()}};
  std::vector<TarFile> files = {{"oci-layout", R"({"imageLayoutVersion":"1.0.0"})"},
                                {"blobs", "", '5'},
                                {"blobs/sha256", "", '5'}};
  for (auto& l : layers) {
    std::string d = l.digest;
    if (!tamper_layer_digest.empty()) {
      d = tamper_layer_digest;
    }
    m["layers"].push_back(
        {{"mediaType", l.gzip ? image::media::kOciLayerGzip : image::media::kOciLayer},
         {"digest", d},
         {"size", l.blob.size()}});
    files.push_back({"blobs/sha256/" + d.substr(7), l.blob});
  }
  std::string mbytes = m.dump();
  if (manifest_out) {
    *manifest_out = mbytes;
  }
  files.push_back({"blobs/sha256/" + util::sha256_digest(config).substr(7), config});
  files.push_back({"blobs/sha256/" + util::sha256_digest(mbytes).substr(7), mbytes});
  nlohmann::json desc = {{"mediaType", image::media::kOciManifest},
                         {"digest", util::sha256_digest(mbytes)},
                         {"size", mbytes.size()}};
  if (!ref_name.empty()) {
    desc["annotations"] = {{"org.opencontainers.image.ref.name", ref_name}};
  }
  nlohmann::json index = {
      {"schemaVersion", 2}, {"mediaType", image::media::kOciIndex}, {"manifests", {desc}}};
  files.push_back({"index.json", index.dump()});
  return make_tar(files);
}

// A docker-archive as `docker save` writes it: <id>/layer.tar, <config>.json, manifest.json.
inline std::string make_docker_archive(const std::vector<TestLayer>& layers,
                                       const std::string& config,
                                       const std::vector<std::string>& repo_tags) {
  std::vector<TarFile> files;
  nlohmann::json entry = {{"Config", util::sha256_digest(config).substr(7) + ".json"},
                          {"RepoTags", repo_tags},
                          {"Layers", nlohmann::json::array()}};
  for (auto& l : layers) {
    std::string dir = l.diff_id.substr(7);
    files.push_back({dir, "", '5'});
    files.push_back({dir + "/layer.tar", l.tar});
    entry["Layers"].push_back(dir + "/layer.tar");
  }
  files.push_back({util::sha256_digest(config).substr(7) + ".json", config});
  files.push_back({"manifest.json", nlohmann::json::array({entry}).dump()});
  return make_tar(files);
}

inline void write_file(const std::filesystem::path& p, const std::string& data) {
  std::ofstream f(p, std::ios::binary);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace berth::testing
