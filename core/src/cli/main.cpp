// berth's entry point. A command runs locally over the store, or, with --url, --connection or
// --remote before the command or among its options, on a berth service (docs/remote.md): run_cli()
// parses the command line either way, so global flags mean the same wherever they stand.
#include "command.hpp"

int main(int argc, char** argv) {
  return berth::cli::run_cli(argc, argv);
}
