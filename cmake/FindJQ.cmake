# Finds libjq (Debian's libjq-dev has no CMake package). Defines JQ::jq.
find_path(JQ_INCLUDE_DIR jq.h)
find_library(JQ_LIBRARY NAMES jq)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(JQ REQUIRED_VARS JQ_INCLUDE_DIR JQ_LIBRARY)
if(JQ_FOUND AND NOT TARGET JQ::jq)
  add_library(JQ::jq UNKNOWN IMPORTED)
  set_target_properties(JQ::jq PROPERTIES
    IMPORTED_LOCATION "${JQ_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${JQ_INCLUDE_DIR}")
endif()
mark_as_advanced(JQ_INCLUDE_DIR JQ_LIBRARY)
