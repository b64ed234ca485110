# Install layout and the Debian package, included from the top-level
# CMakeLists.txt (GNUInstallDirs is already loaded there).
#
#   cmake -S . -B build-pkg -DCMAKE_INSTALL_PREFIX=/usr -DWSRELAY_INSTALL_LAYOUT=ON
#   cmake --build build-pkg --target package      # wsrelay_VERSION_ARCH.deb
#
# With the prefix /usr, `cmake --install` lays out
#   /usr/bin/wsrelay
#   /etc/wsrelay/node.toml               node.toml.example, [web] root left at
#                                        its default; an existing file is kept
#   /usr/share/wsrelay/web/              the demo chat and the overview
#   /lib/systemd/system/wsrelay.service
# (another prefix P: P/bin, P/etc, P/share, P/lib/systemd/system).

# /etc and /lib/systemd/system for the prefix /usr (GNUInstallDirs
# special-cases SYSCONFDIR for it), PREFIX/... otherwise.
set(WSRELAY_CONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/wsrelay)
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(unitdir_default /lib/systemd/system)
else()
  set(unitdir_default ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
set(WSRELAY_SYSTEMD_UNITDIR ${unitdir_default} CACHE PATH
  "Where `cmake --install` puts wsrelay.service")

install(TARGETS wsrelay RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/web/
  DESTINATION ${CMAKE_INSTALL_DATADIR}/wsrelay/web)

# The installed node.toml: the example, with `root = "web"` (the folder
# beside the file, right in the source tree) commented out, so the
# compiled-in default root applies.
file(READ ${PROJECT_SOURCE_DIR}/node.toml.example toml)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/node.toml.example)
string(REPLACE "\nroot = \"web\"\n"
  "\n# root = \"${WSRELAY_WEB_ROOT}\"\n" installed "${toml}")
if(installed STREQUAL toml)
  message(FATAL_ERROR "node.toml.example has no line 'root = \"web\"': "
    "update packaging/install.cmake")
endif()
file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/packaging/node.toml
  CONTENT "${installed}" @ONLY)
# never over an existing one (an admin's edits); dpkg, which sees
# node.toml as a conffile, installs into an empty staging tree
install(CODE "
  set(conf \"${WSRELAY_CONFDIR}/node.toml\")
  if(EXISTS \"\$ENV{DESTDIR}\${conf}\")
    message(STATUS \"Keeping existing: \$ENV{DESTDIR}\${conf}\")
  else()
    file(INSTALL DESTINATION \"${WSRELAY_CONFDIR}\" TYPE FILE
      PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
      FILES \"${PROJECT_BINARY_DIR}/packaging/node.toml\")
  endif()")

configure_file(${CMAKE_CURRENT_LIST_DIR}/wsrelay.service.in
  ${PROJECT_BINARY_DIR}/packaging/wsrelay.service @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/packaging/wsrelay.service
  DESTINATION ${WSRELAY_SYSTEMD_UNITDIR})

# cpack -G DEB. Depends: what dpkg-shlibdeps finds (dpkg-dev), plus what
# it cannot: lws's libuv event loop is a plugin lws dlopen()s, and the
# postinst uses adduser.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME wsrelay)
set(CPACK_PACKAGE_VENDOR wsrelay)
set(CPACK_PACKAGE_CONTACT "wsrelay maintainers <wsrelay@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "federated WebSocket pub/sub relay")
set(CPACK_PACKAGE_DESCRIPTION
  "A WebSocket publish/subscribe relay whose nodes link into a mesh.")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, libwebsockets-evlib-uv")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/packaging/debian/conffiles
  CONTENT "${WSRELAY_CONFDIR}/node.toml\n" @ONLY)
foreach(script postinst prerm postrm)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/${script}.in
    ${PROJECT_BINARY_DIR}/packaging/debian/${script} @ONLY
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
    GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_BINARY_DIR}/packaging/debian/conffiles
  ${PROJECT_BINARY_DIR}/packaging/debian/postinst
  ${PROJECT_BINARY_DIR}/packaging/debian/prerm
  ${PROJECT_BINARY_DIR}/packaging/debian/postrm)
if(NOT WSRELAY_INSTALL_LAYOUT)
  message(STATUS "WSRELAY_INSTALL_LAYOUT is OFF: an installed wsrelay's "
    "default [web] root is ${WSRELAY_WEB_ROOT} (configure packages with ON)")
endif()
include(CPack)
