# Finds SOCI as Debian packages it (no CMake package ships with libsoci-dev).
# Defines SOCI::core, SOCI::postgresql and SOCI::sqlite3 imported targets.
find_path(SOCI_INCLUDE_DIR soci/soci.h)
find_library(SOCI_CORE_LIBRARY NAMES soci_core)
find_library(SOCI_POSTGRESQL_LIBRARY NAMES soci_postgresql)
find_library(SOCI_SQLITE3_LIBRARY NAMES soci_sqlite3)
find_package(PostgreSQL QUIET)
find_path(SOCI_PG_INCLUDE_DIR libpq-fe.h PATH_SUFFIXES postgresql)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(SOCI
  REQUIRED_VARS SOCI_INCLUDE_DIR SOCI_CORE_LIBRARY SOCI_POSTGRESQL_LIBRARY SOCI_SQLITE3_LIBRARY
                SOCI_PG_INCLUDE_DIR)

if(SOCI_FOUND AND NOT TARGET SOCI::core)
  add_library(SOCI::core UNKNOWN IMPORTED)
  set_target_properties(SOCI::core PROPERTIES
    IMPORTED_LOCATION "${SOCI_CORE_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${SOCI_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${CMAKE_DL_LIBS}")
  add_library(SOCI::postgresql UNKNOWN IMPORTED)
  set_target_properties(SOCI::postgresql PROPERTIES
    IMPORTED_LOCATION "${SOCI_POSTGRESQL_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${SOCI_PG_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "SOCI::core;pq")
  add_library(SOCI::sqlite3 UNKNOWN IMPORTED)
  set_target_properties(SOCI::sqlite3 PROPERTIES
    IMPORTED_LOCATION "${SOCI_SQLITE3_LIBRARY}"
    INTERFACE_LINK_LIBRARIES "SOCI::core;sqlite3")
endif()
mark_as_advanced(SOCI_INCLUDE_DIR SOCI_CORE_LIBRARY SOCI_POSTGRESQL_LIBRARY SOCI_SQLITE3_LIBRARY
                 SOCI_PG_INCLUDE_DIR)
