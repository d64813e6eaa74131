# SPDX-License-Identifier: MIT
# install_config.cmake: runs inside `cmake --install` and cpack (install(SCRIPT) in
# deploy/CMakeLists.txt, after install(CODE) has set RC_*). Installs the systemd units, written
# with the paths of this install, and the environment file, which it never overwrites.

# rc_under_prefix(<out> <dir>): <dir> if absolute, else under the prefix of this install.
function(rc_under_prefix out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "${CMAKE_INSTALL_PREFIX}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

string(REGEX REPLACE "/+$" "" prefix "${CMAKE_INSTALL_PREFIX}")
# GNUInstallDirs' rule for CMAKE_INSTALL_FULL_SYSCONFDIR, applied to the prefix in force now.
if(IS_ABSOLUTE "${RC_SYSCONFDIR}")
  set(sysconfdir "${RC_SYSCONFDIR}")
elseif(prefix STREQUAL "/usr" OR prefix STREQUAL "")
  set(sysconfdir "/${RC_SYSCONFDIR}")
elseif(prefix MATCHES "^/opt/")
  set(sysconfdir "/${RC_SYSCONFDIR}${prefix}")
else()
  set(sysconfdir "${prefix}/${RC_SYSCONFDIR}")
endif()

set(RC_ENV_DIR "${sysconfdir}/research-coordinator")
set(RC_ENV_FILE "${RC_ENV_DIR}/coordinator.env")
rc_under_prefix(RC_BIN_DIR "${RC_BINDIR}")
rc_under_prefix(RC_DOC_DIR "${RC_DOCDIR}")
rc_under_prefix(unitdir "${RC_SYSTEMD_UNITDIR}")

# Written under the build tree in a folder of their own per (DESTDIR, prefix), removed once
# installed: installs that run at the same time (the tests, cpack) never install each other's
# units.
string(MD5 key "$ENV{DESTDIR}|${prefix}")
set(gen "${RC_DEPLOY_BINARY_DIR}/systemd/${key}")
foreach(unit research-coordinator.service research-stub-worker@.service)
  file(READ "${RC_DEPLOY_SOURCE_DIR}/systemd/${unit}.in" text)
  string(CONFIGURE "${text}" text @ONLY)
  file(WRITE "${gen}/${unit}" "${text}")
  file(INSTALL "${gen}/${unit}" DESTINATION "${unitdir}"
    PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endforeach()
file(REMOVE_RECURSE "${gen}")

# The environment file may hold secrets: 0600 (systemd reads it as root). An existing one is
# the operator's: keep it (the .deb's dpkg conffile handling does the same).
if(EXISTS "$ENV{DESTDIR}${RC_ENV_FILE}")
  message(STATUS "Keeping: $ENV{DESTDIR}${RC_ENV_FILE} (the example is in ${RC_DOC_DIR})")
else()
  file(INSTALL "${RC_DEPLOY_SOURCE_DIR}/coordinator.env.example" DESTINATION "${RC_ENV_DIR}"
    RENAME coordinator.env PERMISSIONS OWNER_READ OWNER_WRITE)
endif()
