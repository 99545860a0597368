#!/usr/bin/env bash
# Builds the portwatch_exporter image from deploy/container/Containerfile with podman, on a local
# Debian bookworm base: no image registry is reachable here, Debian's package mirror is.
#   container_image.sh SOURCE_DIR CACHE_DIR IMAGE VERSION REVISION
# CACHE_DIR keeps, across runs and build directories:
#   debian-bookworm-rootfs.tar  a debootstrap --variant=minbase bookworm, trimmed like
#                               debian:bookworm-slim (made once, ~1 minute)
#   storage-<driver>/           podman's image store, with the build's layer cache
#   podman                      a wrapper that runs podman on that store (the tests use it)
# The storage driver is overlay when this machine can mount it, vfs otherwise.
set -euo pipefail
source_dir=$1 cache_dir=$2 image=$3 version=$4 revision=$5
base_image=localhost/portwatch-test-base:bookworm
mkdir -p "$cache_dir"
cache_dir=$(cd "$cache_dir" && pwd)
log() { echo "container_image: $*" >&2; }

# The Debian mirror this machine's apt uses, for debootstrap and for the images' apt.
mirror_of() {
  local uri
  uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/debian.sources | awk '{print $2}' | grep -v -- '-security' | head -n 1 || true)
  [ -n "$uri" ] || uri=$(grep -hsE '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v -- '-security' | head -n 1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

make_rootfs() {
  local tarball=$cache_dir/debian-bookworm-rootfs.tar
  [ -s "$tarball" ] && return 0
  local mirror rootfs
  mirror=$(mirror_of)
  rootfs=$(mktemp -d "$cache_dir/rootfs.XXXXXX")
  log "debootstrap bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > "$cache_dir/debootstrap.log" 2>&1 || {
    tail -n 20 "$cache_dir/debootstrap.log" >&2
    rm -rf "$rootfs"
    return 1
  }
  # Like debian:bookworm-slim: no package caches or lists, no docs, man pages or locales (now or
  # in later installs), apt sources in deb822 form including updates and security.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/etc/apt/sources.list
  cat > "$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
SLIM
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/groff/*
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  cat > "$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$rootfs"
}

write_wrapper() {  # write_wrapper DRIVER
  # podman's default open-files limit for containers (1048576) is above what this machine
  # allows; 1024 is plenty for the exporter and for apt.
  cat > "$cache_dir/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
CONF
  cat > "$cache_dir/podman" <<WRAPPER
#!/bin/sh
# podman on the test suite's own image store (written by tests/deploy/container_image.sh).
CONTAINERS_CONF="$cache_dir/containers.conf" exec podman --root "$cache_dir/storage-$1" --runroot "$cache_dir/run-$1" --storage-driver $1 \\
  --cgroup-manager cgroupfs --events-backend none --runtime runc "\$@"
WRAPPER
  chmod 0755 "$cache_dir/podman"
}

import_base() {  # import_base: the base image in the current store, imported from the tarball
  "$cache_dir/podman" image exists "$base_image" && return 0
  "$cache_dir/podman" import --change 'CMD ["bash"]' "$cache_dir/debian-bookworm-rootfs.tar" "$base_image" >/dev/null
}

command -v podman >/dev/null || { log "podman is not installed (tools/dev.sh installs it)"; exit 1; }
command -v debootstrap >/dev/null || [ -s "$cache_dir/debian-bookworm-rootfs.tar" ] ||
  { log "debootstrap is not installed (tools/dev.sh installs it)"; exit 1; }
make_rootfs

driver=$(cat "$cache_dir/driver" 2>/dev/null || true)
if [ -z "$driver" ]; then
  for candidate in overlay vfs; do
    write_wrapper "$candidate"
    if import_base && "$cache_dir/podman" run --rm --network none "$base_image" true; then
      driver=$candidate
      break
    fi
    log "storage driver $candidate does not work here"
    rm -rf "$cache_dir/storage-$candidate" "$cache_dir/run-$candidate"
  done
  [ -n "$driver" ] || { log "podman cannot run a container with any storage driver"; exit 1; }
  echo "$driver" > "$cache_dir/driver"
fi
write_wrapper "$driver"
import_base
log "storage driver $driver"

# Containers an interrupted test left behind, and old layers from earlier builds (the current
# build's cache is younger).
"$cache_dir/podman" container prune -f >/dev/null 2>&1 || true
"$cache_dir/podman" image prune -f --filter until=72h >/dev/null 2>&1 || true

"$cache_dir/podman" build --isolation chroot --network host \
  -f "$source_dir/deploy/container/Containerfile" \
  --ignorefile "$source_dir/deploy/container/Containerfile.dockerignore" \
  --build-arg BASE_IMAGE="$base_image" \
  --build-arg PORTWATCH_VERSION="$version" \
  --build-arg PORTWATCH_REVISION="$revision" \
  -t "$image" "$source_dir"
