# The eBPF programs (the bind_events collector's, the socket iterators, the socket owner walk), included by the top-level CMakeLists.txt after the
# portwatch_collectors target exists.
#
# With PORTWATCH_BPF (default ON), at build time:
#   1. vmlinux.h from the build machine's kernel BTF (bpftool btf dump ... format c): the kernel
#      types the program reads. CO-RE relocations adapt the offsets to the kernel it runs on.
#   2. bind_events.bpf.o with clang -target bpf.
#   3. bind_events.skel.h (bpftool gen skeleton): the object embedded in the binary plus typed
#      open/load/attach functions; only bind_events_skel.c (C) includes it.
# Everything generated stays in the build tree (not linted, not formatted).
if(PORTWATCH_BPF)
  find_program(PORTWATCH_CLANG NAMES clang clang-14 clang-15 clang-16)
  find_program(PORTWATCH_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(LIBBPF IMPORTED_TARGET libbpf)
  set(PORTWATCH_VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH
      "Kernel BTF that vmlinux.h is generated from")
  foreach(need PORTWATCH_CLANG PORTWATCH_BPFTOOL LIBBPF_FOUND)
    if(NOT ${need})
      message(FATAL_ERROR "PORTWATCH_BPF: ${need} not found (apt-get install clang bpftool "
                          "libbpf-dev, as tools/dev.sh does), or configure with -DPORTWATCH_BPF=OFF")
    endif()
  endforeach()
  if(NOT EXISTS ${PORTWATCH_VMLINUX_BTF})
    message(FATAL_ERROR "PORTWATCH_BPF: ${PORTWATCH_VMLINUX_BTF} missing (kernel without BTF): "
                        "set -DPORTWATCH_VMLINUX_BTF=<file> or -DPORTWATCH_BPF=OFF")
  endif()
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
    set(PORTWATCH_BPF_ARCH x86)
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
    set(PORTWATCH_BPF_ARCH arm64)
  else()
    message(FATAL_ERROR "PORTWATCH_BPF: unsupported architecture ${CMAKE_SYSTEM_PROCESSOR}")
  endif()

  set(PORTWATCH_BPF_DIR ${CMAKE_BINARY_DIR}/bpf)
  file(MAKE_DIRECTORY ${PORTWATCH_BPF_DIR})
  # One BPF object and its skeleton: NAME.bpf.c (with NAME_abi.h) -> NAME.skel.h, whose typed
  # functions are named NAME_bpf__*.
  function(portwatch_bpf_skeleton name)
    set(source ${CMAKE_SOURCE_DIR}/collectors/bpf/${name}.bpf.c)
    add_custom_command(
      OUTPUT ${PORTWATCH_BPF_DIR}/${name}.bpf.o
      COMMAND ${PORTWATCH_CLANG} -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_${PORTWATCH_BPF_ARCH}
              -I${PORTWATCH_BPF_DIR} -I${CMAKE_SOURCE_DIR} -c ${source}
              -o ${PORTWATCH_BPF_DIR}/${name}.bpf.o
      DEPENDS ${source} ${CMAKE_SOURCE_DIR}/collectors/bpf/${name}_abi.h
              ${PORTWATCH_BPF_DIR}/vmlinux.h
      COMMENT "clang -target bpf: ${name}.bpf.o")
    add_custom_command(
      OUTPUT ${PORTWATCH_BPF_DIR}/${name}.skel.h
      # gen object keeps the BTF that CO-RE needs and drops the DWARF: a smaller embedded object.
      COMMAND ${PORTWATCH_BPFTOOL} gen object ${name}.linked.o ${name}.bpf.o
      COMMAND ${PORTWATCH_BPFTOOL} gen skeleton ${name}.linked.o name ${name}_bpf
              > ${name}.skel.h.tmp
      COMMAND ${CMAKE_COMMAND} -E rename ${name}.skel.h.tmp ${name}.skel.h
      DEPENDS ${PORTWATCH_BPF_DIR}/${name}.bpf.o
      WORKING_DIRECTORY ${PORTWATCH_BPF_DIR}
      COMMENT "bpftool gen skeleton: ${name}.skel.h")
  endfunction()
  add_custom_command(
    OUTPUT ${PORTWATCH_BPF_DIR}/vmlinux.h
    COMMAND ${PORTWATCH_BPFTOOL} btf dump file ${PORTWATCH_VMLINUX_BTF} format c > vmlinux.h.tmp
    COMMAND ${CMAKE_COMMAND} -E rename vmlinux.h.tmp vmlinux.h
    WORKING_DIRECTORY ${PORTWATCH_BPF_DIR}
    COMMENT "bpftool: vmlinux.h from ${PORTWATCH_VMLINUX_BTF}")
  # bind_events: the bind_events collector's programs; socket_iter: the socket iterators of the
  # BPF socket backend (collectors/socket_source); owner_iter: the task_file walk that finds the
  # processes holding sockets (collectors/procfs/socket_fd_iterator).
  portwatch_bpf_skeleton(bind_events)
  portwatch_bpf_skeleton(socket_iter)
  portwatch_bpf_skeleton(owner_iter)
  # The skeleton is used only by a small C file, its own translation unit: generated code is
  # never seen by clang-tidy (which lints collectors/*.cc).
  enable_language(C)
  add_library(portwatch_bpf_skeleton STATIC
    ${CMAKE_SOURCE_DIR}/collectors/bpf/bind_events_skel.c ${PORTWATCH_BPF_DIR}/bind_events.skel.h
    ${CMAKE_SOURCE_DIR}/collectors/bpf/socket_iter_skel.c ${PORTWATCH_BPF_DIR}/socket_iter.skel.h
    ${CMAKE_SOURCE_DIR}/collectors/bpf/owner_iter_skel.c ${PORTWATCH_BPF_DIR}/owner_iter.skel.h)
  target_include_directories(portwatch_bpf_skeleton PRIVATE ${PORTWATCH_BPF_DIR} ${CMAKE_SOURCE_DIR})
  target_compile_options(portwatch_bpf_skeleton PRIVATE -Wno-overlength-strings)
  target_link_libraries(portwatch_bpf_skeleton PUBLIC PkgConfig::LIBBPF)
  target_link_libraries(portwatch_collectors PUBLIC portwatch_bpf_skeleton)
  target_compile_definitions(portwatch_collectors PRIVATE PORTWATCH_HAVE_BPF=1)
  target_link_libraries(portwatch_collectors PUBLIC PkgConfig::LIBBPF)
else()
  target_compile_definitions(portwatch_collectors PRIVATE PORTWATCH_HAVE_BPF=0)
endif()
