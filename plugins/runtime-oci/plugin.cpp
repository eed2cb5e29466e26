#include "berth/sdk/plugin.hpp"

#include "oci_runtime.hpp"

BERTH_DECLARE_PLUGIN(berth::oci::make_oci_runtime)
