#pragma once
// The CLI frame: a Podman-shaped command tree over Boost.Program_options. A command parses its
// flags into the variables map and calls one library function; no logic lives only here.
#include <boost/program_options.hpp>
#include <cstdint>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "berth/sdk/result.hpp"

namespace berth::engine {
class Engine;
}

namespace berth::cli {

namespace po = boost::program_options;

// Podman's exit codes for failures of the engine itself.
inline constexpr int kExitEngineError = 125;
inline constexpr int kExitCannotInvoke = 126;
inline constexpr int kExitNotFound = 127;

struct GlobalOptions {
  std::string root;
  std::string runroot;
  std::string storage_driver;
  std::vector<std::string> storage_opts;
  std::string log_level = "warn";
  std::string config;
  std::string url;
  std::string connection;
  bool remote = false;
};

class Context;

struct Command {
  std::string name;
  std::vector<std::string> aliases;
  std::string summary;      // one line
  std::string usage;        // after the command path, e.g. "[options] IMAGE [COMMAND [ARG...]]"
  std::string description;  // optional longer text
  std::string examples;     // optional
  bool interspersed = true;  // false: options end at the first positional (run, exec)
  size_t min_args = 0;
  size_t max_args = SIZE_MAX;
  std::function<void(po::options_description&)> options;
  std::function<Result<int>(Context&)> run;  // empty for a group
  std::vector<std::unique_ptr<Command>> children;
  std::string path;  // "container ps", filled in by the registry
};

class Context {
 public:
  GlobalOptions globals;
  po::variables_map vm;
  std::vector<std::string> args;  // positional arguments
  const Command* command = nullptr;
  std::ostream& out = std::cout;
  std::ostream& err = std::cerr;

  bool has(const char* key) const { return vm.count(key) != 0 && !vm[key].defaulted(); }
  bool flag(const char* key) const { return vm.count(key) != 0 && vm[key].as<bool>(); }
  std::string str(const char* key) const {
    return vm.count(key) != 0 ? vm[key].as<std::string>() : std::string();
  }
  std::vector<std::string> strs(const char* key) const {
    return vm.count(key) != 0 ? vm[key].as<std::vector<std::string>>()
                              : std::vector<std::string>();
  }
  template <class T>
  T get(const char* key, T fallback = T()) const {
    return vm.count(key) != 0 ? vm[key].as<T>() : fallback;
  }
  // Writes text to stdout (adding nothing).
  void print(std::string_view text) { out << text; }

  // The engine over the store the global flags name, opened on first use.
  Result<engine::Engine*> engine();

 private:
  std::shared_ptr<engine::Engine> engine_;
};

// Registers `cmd` under the group path ("" for the top level, "container", "image", ...).
// Groups are created on first use; register a Command without `run` to give one a summary.
void register_command(std::string_view group, Command cmd);
// `berth ps` runs `berth container ps`: `register_shortcut("ps", "container ps")`.
void register_shortcut(std::string_view name, std::string_view target_path);

int run_cli(int argc, char** argv);

// Registers at static-initialisation time of the berth binary (never in a plugin).
struct Registrar {
  explicit Registrar(const std::function<void()>& f) { f(); }
};

// A leaf command in one call.
Command make_command(std::string name, std::string summary, std::string usage, size_t min_args,
                     size_t max_args, std::function<void(po::options_description&)> opts,
                     std::function<Result<int>(Context&)> run);

// The usual output flags of list commands.
void add_format_options(po::options_description& d, bool quiet = true, bool noheading = true);

}  // namespace berth::cli
