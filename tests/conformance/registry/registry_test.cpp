// The docker transport against Debian's docker-registry and against misbehaving fake registries,
// all on 127.0.0.1. Every process a test starts is killed by pid when the test ends.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "berth/sdk/plugin_file.hpp"
#include "berth/sdk/transport.hpp"
#include "registry_fixture.hpp"

namespace {

using berth::Errc;
using berth::UniqueFd;
using berth::sdk::BlobInfo;
using berth::sdk::Credentials;
using berth::sdk::Manifest;
using berth::sdk::Transport;
using berth::sdk::TransportOptions;
using berth::sdk::TransportPtr;
using berth::sdk::testing::TempDir;
using namespace berth::registry::testing;

constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";

std::string sha256(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

BlobInfo blob_of(const std::string& data) {
  return BlobInfo{sha256(data), static_cast<int64_t>(data.size()), "application/octet-stream"};
}

TransportPtr load_transport(const std::string& options_json = R"({"chunk_size": 65536})") {
  auto plugin = berth::sdk::LoadedPlugin::open(DOCKER_PLUGIN);
  EXPECT_TRUE(plugin.has_value()) << plugin.error().message();
  berth::sdk::PluginContext ctx;
  ctx.options_json = options_json;
  auto t = (*plugin)->create<Transport>(ctx);
  EXPECT_TRUE(t.has_value()) << t.error().message();
  return std::move(*t);
}

TransportOptions insecure() {
  TransportOptions o;
  o.tls_verify = false;
  o.timeout_seconds = 10;
  return o;
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err = registry_.start();
    ASSERT_EQ(err, "");
    transport_ = load_transport();
  }

  // Pushes `data` as a blob of repo; fails the test on error.
  void push(const std::string& repo, const std::string& data,
            const TransportOptions& o = insecure()) {
    auto dest = transport_->open_destination(registry_.host() + "/" + repo + ":latest", o);
    ASSERT_TRUE(dest.has_value()) << dest.error().message();
    UniqueFd fd = data_fd(tmp_.path(), data);
    auto r = (*dest)->put_blob(blob_of(data), fd.get());
    ASSERT_TRUE(r.has_value()) << r.error().message();
  }

  // Fetches a blob (from offset) into a file and returns the bytes.
  std::string fetch(const std::string& repo, const BlobInfo& blob, int64_t offset = 0,
                    const TransportOptions& o = insecure()) {
    auto src = transport_->open_source(registry_.host() + "/" + repo + ":latest", o);
    EXPECT_TRUE(src.has_value()) << src.error().message();
    auto path = tmp_.path() / "out";
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    auto n = (*src)->fetch_blob(blob, offset, fd.get());
    EXPECT_TRUE(n.has_value()) << n.error().message();
    std::string got = slurp(path);
    if (n) {
      EXPECT_EQ(*n, static_cast<int64_t>(got.size()));
    }
    return got;
  }

  // Pushes a config and a layer and returns an OCI manifest for them.
  Manifest push_image(const std::string& repo, unsigned seed) {
    std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers",)"
                         R"("diff_ids":[]},"seed":)" +
                         std::to_string(seed) + "}";
    std::string layer = random_bytes(5000, seed);
    push(repo, config);
    push(repo, layer);
    nlohmann::json m = {{"schemaVersion", 2},
                        {"mediaType", kOciManifest},
                        {"config",
                         {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                          {"digest", sha256(config)},
                          {"size", config.size()}}},
                        {"layers",
                         {{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"},
                           {"digest", sha256(layer)},
                           {"size", layer.size()}}}}};
    Manifest out;
    out.bytes = m.dump();
    out.media_type = kOciManifest;
    out.digest = sha256(out.bytes);
    return out;
  }

  LocalRegistry registry_;
  TransportPtr transport_;
  TempDir tmp_{"berth-registry-test-"};
};

TEST_F(RegistryTest, MonolithicBlobPushedFoundAndFetched) {
  std::string data = random_bytes(10000, 1);  // under chunk_size: one PUT
  auto dest = transport_->open_destination(registry_.host() + "/small:latest", insecure());
  ASSERT_TRUE(dest.has_value()) << dest.error().message();
  auto before = (*dest)->has_blob(blob_of(data));
  ASSERT_TRUE(before.has_value()) << before.error().message();
  EXPECT_FALSE(*before);
  push("small", data);
  auto after = (*dest)->has_blob(blob_of(data));
  ASSERT_TRUE(after.has_value()) << after.error().message();
  EXPECT_TRUE(*after);
  EXPECT_EQ(fetch("small", blob_of(data)), data);
  EXPECT_EQ(slurp(registry_.blob_path(sha256(data))), data);
  EXPECT_EQ(registry_.count_requests("\"PATCH /v2/small/blobs/uploads/"), 0);
  EXPECT_EQ(registry_.count_requests("\"PUT /v2/small/blobs/uploads/"), 1);
}

TEST_F(RegistryTest, ChunkedBlobPushedAndFetchedFromAnOffset) {
  std::string data = random_bytes(300000, 2);  // five 64 KiB chunks
  push("big", data);
  EXPECT_EQ(slurp(registry_.blob_path(sha256(data))), data);
  EXPECT_EQ(registry_.count_requests("\"PATCH /v2/big/blobs/uploads/"), 5);
  EXPECT_EQ(registry_.count_requests("\"PUT /v2/big/blobs/uploads/"), 1);
  EXPECT_EQ(fetch("big", blob_of(data)), data);
  EXPECT_EQ(fetch("big", blob_of(data), 123456), data.substr(123456));
  // The size is unknown: still fetched whole.
  BlobInfo unknown = blob_of(data);
  unknown.size = -1;
  EXPECT_EQ(fetch("big", unknown), data);
}

TEST_F(RegistryTest, BlobOfWrongDigestIsRefusedByTheRegistry) {
  std::string data = random_bytes(1000, 3);
  BlobInfo wrong = blob_of(data);
  wrong.digest = sha256("something else");
  auto dest = transport_->open_destination(registry_.host() + "/x:latest", insecure());
  ASSERT_TRUE(dest.has_value());
  UniqueFd fd = data_fd(tmp_.path(), data);
  auto r = (*dest)->put_blob(wrong, fd.get());
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("DIGEST_INVALID"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find(wrong.digest), std::string::npos) << r.error().message();
}

TEST_F(RegistryTest, ManifestByTagAndByDigest) {
  Manifest m = push_image("app", 4);
  auto dest = transport_->open_destination(registry_.host() + "/app:v1", insecure());
  ASSERT_TRUE(dest.has_value());
  auto put = (*dest)->put_manifest(m, "v1");
  ASSERT_TRUE(put.has_value()) << put.error().message();
  auto put_digest = (*dest)->put_manifest(m, "");
  ASSERT_TRUE(put_digest.has_value()) << put_digest.error().message();
  ASSERT_TRUE((*dest)->commit().has_value());

  auto by_tag = transport_->open_source(registry_.host() + "/app:v1", insecure());
  ASSERT_TRUE(by_tag.has_value());
  auto got = (*by_tag)->manifest("");
  ASSERT_TRUE(got.has_value()) << got.error().message();
  EXPECT_EQ(got->bytes, m.bytes);
  EXPECT_EQ(got->media_type, kOciManifest);
  EXPECT_EQ(got->digest, m.digest);
  auto by_arg = (*by_tag)->manifest(m.digest);
  ASSERT_TRUE(by_arg.has_value()) << by_arg.error().message();
  EXPECT_EQ(by_arg->bytes, m.bytes);

  auto by_digest = transport_->open_source(registry_.host() + "/app@" + m.digest, insecure());
  ASSERT_TRUE(by_digest.has_value());
  auto got2 = (*by_digest)->manifest("");
  ASSERT_TRUE(got2.has_value()) << got2.error().message();
  EXPECT_EQ(got2->bytes, m.bytes);
  EXPECT_EQ(got2->digest, m.digest);
  auto sigs = (*by_digest)->signatures(m.digest);
  ASSERT_TRUE(sigs.has_value());
  EXPECT_TRUE(sigs->empty());
}

TEST_F(RegistryTest, TagsAreListed) {
  Manifest m = push_image("tagged", 5);
  auto dest = transport_->open_destination(registry_.host() + "/tagged:a", insecure());
  ASSERT_TRUE(dest.has_value());
  for (const char* tag : {"a", "b", "c"}) {
    auto put = (*dest)->put_manifest(m, tag);
    ASSERT_TRUE(put.has_value()) << put.error().message();
  }
  auto src = transport_->open_source(registry_.host() + "/tagged:a", insecure());
  ASSERT_TRUE(src.has_value());
  auto tags = (*src)->tags();
  ASSERT_TRUE(tags.has_value()) << tags.error().message();
  std::sort(tags->begin(), tags->end());
  EXPECT_EQ(*tags, (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(RegistryTest, CatalogSearchFiltersAndLimitsAcrossPages) {
  transport_ = load_transport(R"({"chunk_size": 65536, "page_size": 2})");
  std::string data = random_bytes(100, 6);
  for (const char* repo : {"alpha/one", "alpha/two", "beta/three", "alpha/four", "gamma"}) {
    push(repo, data);
  }
  auto all = transport_->search(registry_.host(), "alpha", 0, insecure());
  ASSERT_TRUE(all.has_value()) << all.error().message();
  std::sort(all->begin(), all->end());
  EXPECT_EQ(*all, (std::vector<std::string>{"alpha/four", "alpha/one", "alpha/two"}));
  auto two = transport_->search(registry_.host(), "ALPHA", 2, insecure());
  ASSERT_TRUE(two.has_value()) << two.error().message();
  EXPECT_EQ(two->size(), 2u);
  auto none = transport_->search(registry_.host(), "delta", 10, insecure());
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
}

TEST_F(RegistryTest, CrossRepositoryMount) {
  std::string data = random_bytes(2000, 7);
  push("source/repo", data);
  auto dest = transport_->open_destination(registry_.host() + "/target/repo:latest", insecure());
  ASSERT_TRUE(dest.has_value());
  auto mounted = (*dest)->mount_blob(blob_of(data), "source/repo");
  ASSERT_TRUE(mounted.has_value()) << mounted.error().message();
  EXPECT_TRUE(*mounted);
  auto has = (*dest)->has_blob(blob_of(data));
  ASSERT_TRUE(has.has_value());
  EXPECT_TRUE(*has);

  std::string absent = random_bytes(10, 8);
  auto not_mounted = (*dest)->mount_blob(blob_of(absent), "source/repo");
  ASSERT_TRUE(not_mounted.has_value()) << not_mounted.error().message();
  EXPECT_FALSE(*not_mounted);
}

TEST_F(RegistryTest, OneSourceServesFetchesFromSeveralThreads) {
  std::vector<std::string> blobs{random_bytes(400000, 20), random_bytes(300000, 21),
                                 random_bytes(200000, 22)};
  for (const auto& b : blobs) {
    push("threads", b);
  }
  auto src = transport_->open_source(registry_.host() + "/threads:latest", insecure());
  ASSERT_TRUE(src.has_value());
  std::vector<std::string> got(blobs.size());
  std::vector<std::string> errors(blobs.size());
  std::vector<std::thread> workers;
  for (size_t i = 0; i < blobs.size(); ++i) {
    workers.emplace_back([&, i] {
      auto path = tmp_.path() / ("t" + std::to_string(i));
      UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      auto n = (*src)->fetch_blob(blob_of(blobs[i]), 0, fd.get());
      if (!n) {
        errors[i] = n.error().message();
      }
      got[i] = slurp(path);
    });
  }
  for (auto& w : workers) {
    w.join();
  }
  for (size_t i = 0; i < blobs.size(); ++i) {
    EXPECT_EQ(errors[i], "");
    EXPECT_TRUE(got[i] == blobs[i]) << "blob " << i << " differs";
  }
}

TEST_F(RegistryTest, TamperedBlobIsReturnedAsStoredOnDisk) {
  std::string data = random_bytes(50000, 9);
  push("tamper", data);
  auto path = registry_.blob_path(sha256(data));
  std::string tampered = data;
  tampered[100] = static_cast<char>(tampered[100] ^ 0xff);
  spit(path, tampered);
  std::string got = fetch("tamper", blob_of(data));
  EXPECT_EQ(got, slurp(path));
  EXPECT_NE(got, data);
}

TEST_F(RegistryTest, UnknownManifestIsNotFoundWithTheRegistrysMessage) {
  push_image("known", 10);
  auto src = transport_->open_source(registry_.host() + "/known:nope", insecure());
  ASSERT_TRUE(src.has_value());
  auto m = (*src)->manifest("");
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().code(), Errc::NotFound) << m.error().message();
  const std::string& msg = m.error().message();
  EXPECT_NE(msg.find("MANIFEST_UNKNOWN"), std::string::npos) << msg;
  EXPECT_NE(msg.find(registry_.host()), std::string::npos) << msg;
  EXPECT_NE(msg.find("known"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nope"), std::string::npos) << msg;

  UniqueFd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  auto blob = (*src)->fetch_blob(blob_of("missing"), 0, null.get());
  ASSERT_FALSE(blob.has_value());
  EXPECT_EQ(blob.error().code(), Errc::NotFound) << blob.error().message();
  EXPECT_NE(blob.error().message().find("BLOB_UNKNOWN"), std::string::npos)
      << blob.error().message();
}

TEST_F(RegistryTest, ReaderClosingThePipeCancelsTheFetch) {
  std::string data = random_bytes(3 << 20, 11);
  push("pipe", data);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd rd(p[0]);
  UniqueFd wr(p[1]);
  rd.reset();  // the reader gave up (say, on a digest error)
  auto src = transport_->open_source(registry_.host() + "/pipe:latest", insecure());
  ASSERT_TRUE(src.has_value());
  auto n = (*src)->fetch_blob(blob_of(data), 0, wr.get());
  ASSERT_FALSE(n.has_value());  // and the process was not killed by SIGPIPE
  EXPECT_EQ(n.error().code(), Errc::Cancelled) << n.error().message();
  EXPECT_NE(n.error().message().find(sha256(data)), std::string::npos) << n.error().message();
}

TEST_F(RegistryTest, SecureRegistryOverPlainHttpIsRefused) {
  TransportOptions secure;
  secure.timeout_seconds = 10;
  secure.retries = 0;
  auto src = transport_->open_source(registry_.host() + "/x:latest", secure);
  ASSERT_TRUE(src.has_value());
  auto m = (*src)->manifest("");
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().code(), Errc::PermissionDenied) << m.error().message();
  EXPECT_NE(m.error().message().find(registry_.host()), std::string::npos) << m.error().message();
  EXPECT_NE(m.error().message().find("insecure"), std::string::npos) << m.error().message();
}

TEST(RegistryTls, WorksWithTheCaFromCertDirAndFailsClearlyWithout) {
  RegistryOptions ro;
  ro.tls = true;
  LocalRegistry reg(ro);
  ASSERT_EQ(reg.start(), "");
  auto transport = load_transport();
  TempDir certs("berth-certs-");
  std::filesystem::copy_file(reg.ca_dir() / "ca.crt", certs.path() / "ca.crt");
  TransportOptions good;
  good.cert_dir = certs.path().string();
  good.timeout_seconds = 10;

  std::string data = random_bytes(4000, 12);
  auto dest = transport->open_destination(reg.host() + "/tls:latest", good);
  ASSERT_TRUE(dest.has_value());
  UniqueFd fd = data_fd(certs.path(), data);
  auto put = (*dest)->put_blob(blob_of(data), fd.get());
  ASSERT_TRUE(put.has_value()) << put.error().message();
  auto has = (*dest)->has_blob(blob_of(data));
  ASSERT_TRUE(has.has_value()) << has.error().message();
  EXPECT_TRUE(*has);

  TransportOptions no_ca;
  no_ca.timeout_seconds = 10;
  no_ca.retries = 0;
  auto src = transport->open_source(reg.host() + "/tls:latest", no_ca);
  ASSERT_TRUE(src.has_value());
  auto m = (*src)->manifest("");
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().code(), Errc::PermissionDenied) << m.error().message();
  EXPECT_NE(m.error().message().find(reg.host()), std::string::npos) << m.error().message();
  EXPECT_NE(m.error().message().find("ca.crt"), std::string::npos) << m.error().message();

  // An insecure registry: TLS without verification.
  auto src2 = transport->open_source(reg.host() + "/tls:latest", insecure());
  ASSERT_TRUE(src2.has_value());
  UniqueFd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  auto got = (*src2)->fetch_blob(blob_of(data), 0, null.get());
  ASSERT_TRUE(got.has_value()) << got.error().message();
  EXPECT_EQ(*got, static_cast<int64_t>(data.size()));
}

// An insecure registry found on plain HTTP is remembered in the run root, so the next process
// skips the HTTPS attempt; a remembered scheme that no longer answers is probed again.
TEST(RegistryScheme, RememberedForPlainHttpAndProbedAgainWhenWrong) {
  TempDir run("berth-run-");
  auto with_run_root = [&] {
    auto plugin = berth::sdk::LoadedPlugin::open(DOCKER_PLUGIN);
    EXPECT_TRUE(plugin.has_value()) << plugin.error().message();
    berth::sdk::PluginContext ctx;
    ctx.run_root = run.path().string();
    auto t = (*plugin)->create<Transport>(ctx);
    EXPECT_TRUE(t.has_value()) << t.error().message();
    return std::move(*t);
  };
  auto file_for = [&](const std::string& host) {
    std::string name = host;
    std::replace(name.begin(), name.end(), ':', '_');
    return run.path() / "registries" / (name + ".scheme");
  };

  LocalRegistry plain;
  ASSERT_EQ(plain.start(), "");
  auto login = with_run_root()->check_login(plain.host(), insecure());
  ASSERT_TRUE(login.has_value()) << login.error().message();
  EXPECT_EQ(slurp(file_for(plain.host())), "http\n");
  // The next "process" (a new transport) uses it.
  login = with_run_root()->check_login(plain.host(), insecure());
  ASSERT_TRUE(login.has_value()) << login.error().message();

  // A registry that speaks HTTPS where plain HTTP was remembered (it answers 400 to HTTP).
  RegistryOptions ro;
  ro.tls = true;
  LocalRegistry tls(ro);
  ASSERT_EQ(tls.start(), "");
  std::filesystem::create_directories(file_for(tls.host()).parent_path());
  std::ofstream(file_for(tls.host())) << "http\n";
  login = with_run_root()->check_login(tls.host(), insecure());
  ASSERT_TRUE(login.has_value()) << login.error().message();
  EXPECT_FALSE(std::filesystem::exists(file_for(tls.host())));

  // Several first requests of one client at once, all sent to the wrong remembered scheme: one
  // probes the registry again, the others follow the base it found.
  std::string data = random_bytes(3000, 31);
  {
    auto dest = with_run_root()->open_destination(tls.host() + "/race:latest", insecure());
    ASSERT_TRUE(dest.has_value()) << dest.error().message();
    UniqueFd fd = data_fd(run.path(), data);
    auto put = (*dest)->put_blob(blob_of(data), fd.get());
    ASSERT_TRUE(put.has_value()) << put.error().message();
  }
  std::ofstream(file_for(tls.host())) << "http\n";
  auto transport = with_run_root();
  auto dest = transport->open_destination(tls.host() + "/race:latest", insecure());
  ASSERT_TRUE(dest.has_value()) << dest.error().message();
  std::vector<std::string> errors(4);
  std::vector<std::thread> workers;
  for (size_t i = 0; i < errors.size(); ++i) {
    workers.emplace_back([&, i] {
      auto has = (*dest)->has_blob(blob_of(data));
      errors[i] = !has ? has.error().message() : (*has ? "" : "blob not found");
    });
  }
  for (auto& w : workers) {
    w.join();
  }
  for (const auto& e : errors) {
    EXPECT_EQ(e, "");
  }
  EXPECT_FALSE(std::filesystem::exists(file_for(tls.host())));
}

TEST(RegistryTls, ClientCertificateFromCertDir) {
  RegistryOptions ro;
  ro.tls = true;
  ro.client_certs = true;
  LocalRegistry reg(ro);
  ASSERT_EQ(reg.start(), "");
  auto transport = load_transport();
  TempDir with_cert("berth-certs-");
  TempDir ca_only("berth-certs-");
  for (const char* f : {"ca.crt", "client.cert", "client.key"}) {
    std::filesystem::copy_file(reg.ca_dir() / f, with_cert.path() / f);
  }
  std::filesystem::copy_file(reg.ca_dir() / "ca.crt", ca_only.path() / "ca.crt");

  TransportOptions good;
  good.cert_dir = with_cert.path().string();
  good.timeout_seconds = 10;
  auto login = transport->check_login(reg.host(), good);
  EXPECT_TRUE(login.has_value()) << login.error().message();

  TransportOptions no_cert;
  no_cert.cert_dir = ca_only.path().string();
  no_cert.timeout_seconds = 10;
  no_cert.retries = 0;
  auto refused = transport->check_login(reg.host(), no_cert);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message().find(reg.host()), std::string::npos)
      << refused.error().message();
  EXPECT_NE(refused.error().message().find("client certificate"), std::string::npos)
      << refused.error().message();

  // A certificate without its key is a configuration error naming the file.
  TempDir half("berth-certs-");
  std::filesystem::copy_file(reg.ca_dir() / "client.cert", half.path() / "client.cert");
  TransportOptions broken;
  broken.cert_dir = half.path().string();
  auto src = transport->open_source(reg.host() + "/x:latest", broken);
  ASSERT_FALSE(src.has_value());
  EXPECT_EQ(src.error().code(), Errc::InvalidArgument);
  EXPECT_NE(src.error().message().find("client.key"), std::string::npos) << src.error().message();
}

TEST(RegistryBasicAuth, WorksWithCredentialsAndIsDeniedWithout) {
  RegistryOptions ro;
  ro.htpasswd_user = "alice";
  ro.htpasswd_password = "s3cret";
  LocalRegistry reg(ro);
  ASSERT_EQ(reg.start(), "");
  auto transport = load_transport();
  TempDir tmp("berth-auth-");
  TransportOptions with = insecure();
  with.credentials = Credentials{"alice", "s3cret", ""};

  auto login = transport->check_login(reg.host(), with);
  EXPECT_TRUE(login.has_value()) << login.error().message();

  std::string data = random_bytes(3000, 13);
  auto dest = transport->open_destination(reg.host() + "/private:latest", with);
  ASSERT_TRUE(dest.has_value());
  UniqueFd fd = data_fd(tmp.path(), data);
  auto put = (*dest)->put_blob(blob_of(data), fd.get());
  ASSERT_TRUE(put.has_value()) << put.error().message();

  auto anon = transport->open_source(reg.host() + "/private:latest", insecure());
  ASSERT_TRUE(anon.has_value());
  UniqueFd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  auto denied = (*anon)->fetch_blob(blob_of(data), 0, null.get());
  ASSERT_FALSE(denied.has_value());
  EXPECT_EQ(denied.error().code(), Errc::PermissionDenied) << denied.error().message();
  EXPECT_NE(denied.error().message().find(reg.host()), std::string::npos)
      << denied.error().message();
  EXPECT_NE(denied.error().message().find("berth login"), std::string::npos)
      << denied.error().message();

  TransportOptions wrong = insecure();
  wrong.credentials = Credentials{"alice", "nope", ""};
  auto bad_login = transport->check_login(reg.host(), wrong);
  ASSERT_FALSE(bad_login.has_value());
  EXPECT_EQ(bad_login.error().code(), Errc::PermissionDenied) << bad_login.error().message();
  auto no_login = transport->check_login(reg.host(), insecure());
  ASSERT_FALSE(no_login.has_value());
  EXPECT_EQ(no_login.error().code(), Errc::PermissionDenied);
}

TEST(RegistryFaults, StalledRegistryIsATimeoutNamingTheUrl) {
  FakeRegistry fake("stall");
  ASSERT_EQ(fake.start(), "");
  auto transport = load_transport();
  TransportOptions o = insecure();
  o.timeout_seconds = 1;
  o.retries = 1;
  auto src = transport->open_source(fake.host() + "/stuck:latest", o);
  ASSERT_TRUE(src.has_value());
  auto m = (*src)->manifest("");
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().code(), Errc::Timeout) << m.error().message();
  EXPECT_NE(m.error().message().find(fake.host() + "/v2/"), std::string::npos)
      << m.error().message();
  EXPECT_NE(m.error().message().find("repository stuck: manifest latest"), std::string::npos)
      << m.error().message();
  auto reqs = fake.requests();
  EXPECT_EQ(std::count(reqs.begin(), reqs.end(), "request"), 1)
      << "a registry that never answers is not retried (nor tried again over plain HTTP)";
}

TEST(RegistryFaults, ServerErrorsAreRetriedThenReported) {
  FakeRegistry fake("error500");
  ASSERT_EQ(fake.start(), "");
  auto transport = load_transport();
  TransportOptions o = insecure();
  o.retries = 2;
  auto src = transport->open_source(fake.host() + "/broken:v9", o);
  ASSERT_TRUE(src.has_value());
  auto m = (*src)->manifest("");
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().code(), Errc::Unavailable) << m.error().message();
  const std::string& msg = m.error().message();
  EXPECT_NE(msg.find("HTTP 500"), std::string::npos) << msg;
  EXPECT_NE(msg.find("the disk is on fire"), std::string::npos) << msg;
  EXPECT_NE(msg.find("broken"), std::string::npos) << msg;
  EXPECT_NE(msg.find("v9"), std::string::npos) << msg;
  auto reqs = fake.requests();
  long manifest_requests = std::count_if(reqs.begin(), reqs.end(), [](const std::string& r) {
    return r.starts_with("GET /v2/broken/manifests/v9");
  });
  EXPECT_EQ(manifest_requests, 3) << "one request and two retries";
}

TEST(RegistryFaults, TooManyRequestsIsRetriedAfterTheAskedDelay) {
  FakeRegistry fake("busy");
  ASSERT_EQ(fake.start(), "");
  auto transport = load_transport();
  TransportOptions o = insecure();
  o.retries = 1;
  auto src = transport->open_source(fake.host() + "/busy:latest", o);
  ASSERT_TRUE(src.has_value());
  auto m = (*src)->manifest("");
  ASSERT_TRUE(m.has_value()) << m.error().message();
  EXPECT_EQ(m->media_type, kOciManifest);
  auto reqs = fake.requests();
  EXPECT_EQ(std::count_if(reqs.begin(), reqs.end(),
                          [](const std::string& r) {
                            return r.starts_with("GET /v2/busy/manifests/latest");
                          }),
            2);
}

std::string fake_blob() {
  std::string s(1 << 20, '\0');
  for (size_t i = 0; i < s.size(); ++i) {
    s[i] = static_cast<char>((i * 7 + 3) % 251);
  }
  return s;
}

TEST(RegistryFaults, BrokenDownloadIsResumedWithRange) {
  FakeRegistry fake("flaky");
  ASSERT_EQ(fake.start(), "");
  auto transport = load_transport();
  TempDir tmp("berth-flaky-");
  std::string expected = fake_blob();
  auto src = transport->open_source(fake.host() + "/flaky:latest", insecure());
  ASSERT_TRUE(src.has_value());
  auto path = tmp.path() / "blob";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  auto n = (*src)->fetch_blob(blob_of(expected), 0, fd.get());
  ASSERT_TRUE(n.has_value()) << n.error().message();
  EXPECT_EQ(*n, static_cast<int64_t>(expected.size()));
  EXPECT_EQ(slurp(path), expected);
  auto reqs = fake.requests();
  bool resumed = std::any_of(reqs.begin(), reqs.end(), [](const std::string& r) {
    return r.find("range=bytes=524288-") != std::string::npos;
  });
  EXPECT_TRUE(resumed) << "no Range request after the broken connection";

  // With no retries allowed the broken connection is an error, not a short blob.
  TransportOptions once = insecure();
  once.retries = 0;
  auto src2 = transport->open_source(fake.host() + "/flaky:latest", once);
  ASSERT_TRUE(src2.has_value());
  UniqueFd fd2(::open(path.c_str(), O_RDWR | O_TRUNC | O_CLOEXEC));
  auto n2 = (*src2)->fetch_blob(blob_of(expected), 0, fd2.get());
  ASSERT_FALSE(n2.has_value());
  EXPECT_NE(n2.error().message().find(blob_of(expected).digest), std::string::npos);
}

TEST(RegistryFaults, RedirectedBlobDoesNotCarryCredentialsToAnotherHost) {
  FakeRegistry fake("redirect");
  ASSERT_EQ(fake.start(), "");
  auto transport = load_transport();
  TempDir tmp("berth-redirect-");
  std::string expected = fake_blob();
  TransportOptions o = insecure();
  o.credentials = Credentials{"user", "pass", ""};
  auto src = transport->open_source(fake.host() + "/moved:latest", o);
  ASSERT_TRUE(src.has_value());
  auto path = tmp.path() / "blob";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  auto n = (*src)->fetch_blob(blob_of(expected), 0, fd.get());
  ASSERT_TRUE(n.has_value()) << n.error().message();
  EXPECT_EQ(slurp(path), expected);
  auto reqs = fake.requests();
  auto storage = std::find_if(reqs.begin(), reqs.end(),
                              [](const std::string& r) { return r.starts_with("GET /storage/"); });
  ASSERT_NE(storage, reqs.end());
  EXPECT_TRUE(storage->ends_with("auth=")) << *storage;
  bool registry_got_auth = std::any_of(reqs.begin(), reqs.end(), [](const std::string& r) {
    return r.starts_with("GET /v2/moved/blobs/") && r.find("auth=Basic ") != std::string::npos;
  });
  EXPECT_TRUE(registry_got_auth);
}

TEST(RegistryFaults, SchemaOneOversizedAndMismatchedManifestsAreRefused) {
  FakeRegistry fake("manifests");
  ASSERT_EQ(fake.start(), "");
  auto transport = load_transport();
  auto v1 = transport->open_source(fake.host() + "/v1:latest", insecure());
  ASSERT_TRUE(v1.has_value());
  auto m1 = (*v1)->manifest("");
  ASSERT_FALSE(m1.has_value());
  EXPECT_EQ(m1.error().code(), Errc::NotSupported) << m1.error().message();
  EXPECT_NE(m1.error().message().find("schema 1"), std::string::npos) << m1.error().message();

  auto huge = transport->open_source(fake.host() + "/huge:latest", insecure());
  ASSERT_TRUE(huge.has_value());
  auto m2 = (*huge)->manifest("");
  ASSERT_FALSE(m2.has_value());
  EXPECT_EQ(m2.error().code(), Errc::InvalidArgument) << m2.error().message();
  EXPECT_NE(m2.error().message().find("4 MiB"), std::string::npos) << m2.error().message();

  std::string asked = sha256("not what the registry has");
  auto wrong = transport->open_source(fake.host() + "/wrong@" + asked, insecure());
  ASSERT_TRUE(wrong.has_value());
  auto m3 = (*wrong)->manifest("");
  ASSERT_FALSE(m3.has_value());
  EXPECT_EQ(m3.error().code(), Errc::Corrupt) << m3.error().message();
  EXPECT_NE(m3.error().message().find(asked), std::string::npos) << m3.error().message();
}

TEST(RegistryFaults, ChunkedUploadFallsBackToMonolithicWhenRefused) {
  FakeRegistry fake("uploads");
  ASSERT_EQ(fake.start(), "");
  auto transport = load_transport(R"({"chunk_size": 4096})");
  TempDir tmp("berth-uploads-");
  std::string data = random_bytes(20000, 15);
  auto dest = transport->open_destination(fake.host() + "/up:latest", insecure());
  ASSERT_TRUE(dest.has_value());
  UniqueFd fd = data_fd(tmp.path(), data);
  auto put = (*dest)->put_blob(blob_of(data), fd.get());
  ASSERT_TRUE(put.has_value()) << put.error().message();
  auto reqs = fake.requests();
  EXPECT_TRUE(std::any_of(reqs.begin(), reqs.end(),
                          [](const std::string& r) { return r.starts_with("PATCH "); }));
  std::string stored = "stored " + sha256(data) + " 20000";
  EXPECT_NE(std::find(reqs.begin(), reqs.end(), stored), reqs.end())
      << "the whole blob was not PUT in one request";
}

TEST(RegistryTokenAuth, TokenFlowWithScopes) {
  FakeRegistry token("token");
  ASSERT_EQ(token.start(), "");
  RegistryOptions ro;
  ro.token_realm = "http://" + token.host() + "/token";
  LocalRegistry reg(ro);
  ASSERT_EQ(reg.start(), "");
  // The token server signs with the registry's CA key (its root certificate bundle).
  std::filesystem::copy_file(reg.ca_dir() / "ca.key", token.log_path() + ".key");
  std::filesystem::copy_file(reg.ca_dir() / "ca.crt", token.log_path() + ".crt");
  auto transport = load_transport();
  TempDir tmp("berth-token-");
  TransportOptions user = insecure();
  user.credentials = Credentials{"user", "pass", ""};

  EXPECT_TRUE(transport->check_login(reg.host(), user).has_value());
  std::string data = random_bytes(2000, 14);
  auto dest = transport->open_destination(reg.host() + "/public/app:latest", user);
  ASSERT_TRUE(dest.has_value());
  UniqueFd fd = data_fd(tmp.path(), data);
  auto put = (*dest)->put_blob(blob_of(data), fd.get());
  ASSERT_TRUE(put.has_value()) << put.error().message();
  auto again = (*dest)->has_blob(blob_of(data));
  ASSERT_TRUE(again.has_value()) << again.error().message();
  EXPECT_TRUE(*again);

  // Anonymous pull of a public repository works; of another repository it is denied.
  auto anon = transport->open_source(reg.host() + "/public/app:latest", insecure());
  ASSERT_TRUE(anon.has_value());
  auto path = tmp.path() / "blob";
  UniqueFd out(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  auto n = (*anon)->fetch_blob(blob_of(data), 0, out.get());
  ASSERT_TRUE(n.has_value()) << n.error().message();
  EXPECT_EQ(slurp(path), data);

  auto anon_private = transport->open_source(reg.host() + "/private/app:latest", insecure());
  ASSERT_TRUE(anon_private.has_value());
  auto m = (*anon_private)->manifest("");
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().code(), Errc::PermissionDenied) << m.error().message();

  auto reqs = token.requests();
  bool push_scope = std::any_of(reqs.begin(), reqs.end(), [](const std::string& r) {
    return r.find("scope=repository%3Apublic%2Fapp%3Apull%2Cpush") != std::string::npos &&
           r.find("auth=Basic ") != std::string::npos;
  });
  EXPECT_TRUE(push_scope) << "no authenticated pull,push token request";
  // Tokens are cached per scope: the pushes and HEAD above asked once for pull,push.
  long push_tokens = std::count_if(reqs.begin(), reqs.end(), [](const std::string& r) {
    return r.find("%3Apull%2Cpush") != std::string::npos;
  });
  EXPECT_EQ(push_tokens, 1);

  TransportOptions wrong = insecure();
  wrong.credentials = Credentials{"user", "wrong", ""};
  auto bad = transport->check_login(reg.host(), wrong);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), Errc::PermissionDenied) << bad.error().message();

  // An identity (OAuth2 refresh) token instead of a password.
  TransportOptions ident = insecure();
  ident.credentials = Credentials{"", "", "refresh-me"};
  EXPECT_TRUE(transport->check_login(reg.host(), ident).has_value());
  std::string secret = random_bytes(1500, 16);
  auto idest = transport->open_destination(reg.host() + "/private/app:latest", ident);
  ASSERT_TRUE(idest.has_value());
  UniqueFd sfd = data_fd(tmp.path(), secret);
  auto iput = (*idest)->put_blob(blob_of(secret), sfd.get());
  ASSERT_TRUE(iput.has_value()) << iput.error().message();
  auto post_requests = token.requests();
  EXPECT_TRUE(std::any_of(post_requests.begin(), post_requests.end(),
                          [](const std::string& r) { return r.starts_with("POST /token"); }));
  TransportOptions bad_ident = insecure();
  bad_ident.credentials = Credentials{"", "", "stale"};
  auto refused = transport->check_login(reg.host(), bad_ident);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), Errc::PermissionDenied) << refused.error().message();
}

TEST(RegistryInterop, ImagePushedBySkopeoIsReadBack) {
  if (!std::filesystem::exists("/work/shared/images/bb/index.json")) {
    GTEST_SKIP() << "the shared bb image layout is not on this host";
  }
  LocalRegistry reg;
  ASSERT_EQ(reg.start(), "");
  int rc = run("skopeo copy --quiet oci:/work/shared/images/bb:latest docker://" + reg.host() +
               "/bb:latest --dest-tls-verify=false > /dev/null 2>&1");
  ASSERT_EQ(rc, 0) << "skopeo copy failed";
  auto transport = load_transport();
  TempDir tmp("berth-interop-");
  auto src = transport->open_source(reg.host() + "/bb:latest", insecure());
  ASSERT_TRUE(src.has_value());
  auto m = (*src)->manifest("");
  ASSERT_TRUE(m.has_value()) << m.error().message();
  EXPECT_EQ(m->digest, sha256(m->bytes));
  // skopeo kept the layout's manifest as it is (tests/../images/DIGESTS).
  EXPECT_EQ(m->digest, "sha256:bc9dd603075f89cde811855d9527ece63c5a44f442480a7bb8325bd1bd062961");
  EXPECT_EQ(m->media_type, kOciManifest);
  auto j = nlohmann::json::parse(m->bytes);
  std::vector<nlohmann::json> blobs{j["config"]};
  for (const auto& l : j["layers"]) {
    blobs.push_back(l);
  }
  for (const auto& b : blobs) {
    BlobInfo info{b["digest"].get<std::string>(), b["size"].get<int64_t>(),
                  b["mediaType"].get<std::string>()};
    auto path = tmp.path() / "blob";
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    auto n = (*src)->fetch_blob(info, 0, fd.get());
    ASSERT_TRUE(n.has_value()) << n.error().message();
    EXPECT_EQ(*n, info.size);
    EXPECT_EQ(sha256(slurp(path)), info.digest);
  }
  auto tags = (*src)->tags();
  ASSERT_TRUE(tags.has_value()) << tags.error().message();
  EXPECT_EQ(*tags, std::vector<std::string>{"latest"});
}

}  // namespace
