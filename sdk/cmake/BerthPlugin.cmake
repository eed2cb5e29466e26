# berth_add_plugin(<target> KIND <storage|network|transport|verifier|runtime> NAME <name>
#                  VERSION <v> [LICENCE <spdx>] [DESCRIPTION <text>] [ALIASES <a,b>]
#                  [OUTPUT_DIRECTORY <dir>] SOURCES <files...>)
#
# Builds a berth plugin: a MODULE library named berth-<kind>-<name>.so with hidden visibility,
# the descriptor fields passed to the sources as BERTH_PLUGIN_* definitions (use
# BERTH_DECLARE_PLUGIN(factory) in one source), and the sidecar manifest berth-<kind>-<name>.json
# that `berth plugin ls` reads without loading the plugin.
function(berth_add_plugin target)
  cmake_parse_arguments(P "" "KIND;NAME;VERSION;LICENCE;DESCRIPTION;ALIASES;OUTPUT_DIRECTORY"
    "SOURCES;LINK" ${ARGN})
  foreach(req KIND NAME VERSION SOURCES)
    if(NOT P_${req})
      message(FATAL_ERROR "berth_add_plugin(${target}): ${req} is required")
    endif()
  endforeach()
  if(NOT P_KIND MATCHES "^(storage|network|transport|verifier|runtime)$")
    message(FATAL_ERROR "berth_add_plugin(${target}): unknown KIND ${P_KIND}")
  endif()
  if(NOT P_LICENCE)
    set(P_LICENCE "Apache-2.0")
  endif()
  set(stem "berth-${P_KIND}-${P_NAME}")
  add_library(${target} MODULE ${P_SOURCES})
  if(TARGET berth_sdk_support)
    target_link_libraries(${target} PRIVATE berth_sdk_support ${P_LINK})
  else()
    target_link_libraries(${target} PRIVATE BerthSDK::support ${P_LINK})
  endif()
  set_target_properties(${target} PROPERTIES PREFIX "" OUTPUT_NAME ${stem}
    CXX_VISIBILITY_PRESET hidden C_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  target_compile_features(${target} PRIVATE cxx_std_23)
  target_link_options(${target} PRIVATE -Wl,--no-undefined)
  target_compile_definitions(${target} PRIVATE
    BERTH_PLUGIN_KIND_ID=${P_KIND}
    "BERTH_PLUGIN_NAME=\"${P_NAME}\""
    "BERTH_PLUGIN_ALIASES=\"${P_ALIASES}\""
    "BERTH_PLUGIN_VERSION=\"${P_VERSION}\""
    "BERTH_PLUGIN_LICENCE=\"${P_LICENCE}\""
    "BERTH_PLUGIN_DESCRIPTION=\"${P_DESCRIPTION}\"")
  if(P_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIRECTORY})
  endif()
  set(sidecar "{\n  \"kind\": \"berth.${P_KIND}.v1\",\n  \"name\": \"${P_NAME}\",\n  \"aliases\": \"${P_ALIASES}\",\n  \"version\": \"${P_VERSION}\",\n  \"licence\": \"${P_LICENCE}\",\n  \"description\": \"${P_DESCRIPTION}\",\n  \"file\": \"${stem}.so\"\n}\n")
  file(GENERATE OUTPUT $<TARGET_FILE_DIR:${target}>/${stem}.json CONTENT "${sidecar}")
endfunction()
