# ccache when present. Precompiled headers need the pch_defines/time_macros sloppiness to be cached.
find_program(GRAFTLAB_CCACHE ccache)
if(GRAFTLAB_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER
      ${CMAKE_COMMAND} -E env CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
      ${GRAFTLAB_CCACHE})
  message(STATUS "GraftLab: compiling through ccache (${GRAFTLAB_CCACHE})")
endif()
