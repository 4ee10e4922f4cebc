# CTest `install_prefix`: `cmake --install` the build into a fresh temporary
# prefix and check that it is a usable Linux desktop installation: the
# binaries, the .desktop file and the hicolor icon are there, and the
# installed `bimamba --help` runs with no LD_LIBRARY_PATH (its install RPATH
# finds LibTorch). Run as: cmake -DBUILD_DIR=... -DPREFIX=... -DGUI=ON|OFF -P InstallCheck.cmake
foreach(v BUILD_DIR PREFIX)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "InstallCheck.cmake: ${v} is not set")
  endif()
endforeach()
file(REMOVE_RECURSE "${PREFIX}")
execute_process(COMMAND ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${PREFIX}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed (${rc}):\n${out}\n${err}")
endif()
set(expected bin/bimamba bin/bimamba-chat)
if(GUI)
  list(APPEND expected bin/bimamba-workbench share/applications/bimamba-workbench.desktop
       share/icons/hicolor/scalable/apps/bimamba-workbench.svg)
endif()
foreach(f ${expected})
  if(NOT EXISTS "${PREFIX}/${f}")
    message(FATAL_ERROR "not installed: ${PREFIX}/${f}")
  endif()
endforeach()
# The installed CLI runs on its own (RPATH to LibTorch, no LD_LIBRARY_PATH).
execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH "${PREFIX}/bin/bimamba" --help
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "generate")
  message(FATAL_ERROR "installed bimamba --help failed (${rc}):\n${out}\n${err}")
endif()
# The installed torch-free chat runs on its own too.
execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH "${PREFIX}/bin/bimamba-chat" --help
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "usage: bimamba chat")
  message(FATAL_ERROR "installed bimamba-chat --help failed (${rc}):\n${out}\n${err}")
endif()
if(GUI)
  file(READ "${PREFIX}/share/applications/bimamba-workbench.desktop" desktop)
  foreach(key "Type=Application" "Exec=bimamba-workbench" "Icon=bimamba-workbench")
    string(FIND "${desktop}" "${key}" at)
    if(at LESS 0)
      message(FATAL_ERROR "the .desktop file lacks ${key}")
    endif()
  endforeach()
  find_program(DESKTOP_FILE_VALIDATE desktop-file-validate)
  if(DESKTOP_FILE_VALIDATE)
    execute_process(COMMAND ${DESKTOP_FILE_VALIDATE} "${PREFIX}/share/applications/bimamba-workbench.desktop"
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "desktop-file-validate: ${out}${err}")
    endif()
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH QT_QPA_PLATFORM=offscreen
                          "${PREFIX}/bin/bimamba-workbench" --help
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT out MATCHES "--workspace")
    message(FATAL_ERROR "installed bimamba-workbench --help failed (${rc}):\n${out}\n${err}")
  endif()
endif()
file(REMOVE_RECURSE "${PREFIX}")
message(STATUS "install into ${PREFIX}: ${expected}; bimamba --help runs")
