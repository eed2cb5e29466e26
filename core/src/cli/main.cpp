#include "command.hpp"

int main(int argc, char** argv) { return berth::cli::run_cli(argc, argv); }
