#pragma once

#include <filesystem>
#include <random>
#include <string>

namespace portwatch::testing {

// What the tests and benchmarks that stand in for Kubernetes pods share: where to make cgroups
// named as the kubelet names them, and the ids in those names.

/// Where cgroup v2 is mounted: /sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a
/// hybrid one.
std::filesystem::path Cgroup2Root();

/// Where a cgroup the kubelet's cgroupfs driver would name can be made: a v1 hierarchy (pids)
/// where the host has one, else cgroup v2.
std::filesystem::path CgroupfsRoot();

/// `digits` random lower-case hex digits (a container id is 64).
std::string RandomHex(std::mt19937_64& random, size_t digits);

/// A random pod UID in the canonical 8-4-4-4-12 form.
std::string NewPodUid(std::mt19937_64& random);

}  // namespace portwatch::testing
