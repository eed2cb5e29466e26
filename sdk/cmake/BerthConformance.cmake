# berth_add_conformance_test(<name> PLUGIN <plugin target or .so file> [OPTIONS <json>]
#                            [TEST_NAME <ctest name>])
#
# Builds the executable <name>, a conformance runner (berth::sdk::testing::conformance_main over
# BerthSDK::conformance), and registers it with ctest as TEST_NAME (default <name>) running
#   <name> --plugin <plugin file> [--options <json>]
# The suite run is the one for the plugin's kind, read from its descriptor.
function(berth_add_conformance_test name)
  cmake_parse_arguments(C "" "PLUGIN;OPTIONS;TEST_NAME" "" ${ARGN})
  if(NOT C_PLUGIN)
    message(FATAL_ERROR "berth_add_conformance_test(${name}): PLUGIN is required")
  endif()
  if(NOT C_TEST_NAME)
    set(C_TEST_NAME ${name})
  endif()
  set(main ${CMAKE_CURRENT_BINARY_DIR}/${name}_conformance_main.cpp)
  file(CONFIGURE OUTPUT ${main} CONTENT
    "#include \"berth/sdk/testing/conformance.hpp\"\n\nint main(int argc, char** argv) {\n  return berth::sdk::testing::conformance_main(argc, argv);\n}\n")
  add_executable(${name} ${main})
  if(TARGET berth_conformance)
    target_link_libraries(${name} PRIVATE berth_conformance)
  else()
    target_link_libraries(${name} PRIVATE BerthSDK::conformance)
  endif()
  if(TARGET ${C_PLUGIN})
    add_dependencies(${name} ${C_PLUGIN})
    set(file $<TARGET_FILE:${C_PLUGIN}>)
  else()
    set(file ${C_PLUGIN})
  endif()
  set(args --plugin ${file})
  if(C_OPTIONS)
    list(APPEND args --options ${C_OPTIONS})
  endif()
  add_test(NAME ${C_TEST_NAME} COMMAND ${name} ${args})
endfunction()
