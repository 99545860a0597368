#pragma once

#include <string>

namespace portwatch::testing {

/// Moves the calling thread (and every process it forks later) into a new, private network
/// namespace with loopback up. Everything created there vanishes with its last socket.
/// Returns an error message, empty on success.
std::string EnterPrivateNetworkNamespace();

/// Writes a sysctl of the current network namespace, e.g. ("net/ipv4/ip_local_port_range",
/// "40000 40999"). Returns an error message, empty on success.
std::string WriteSysctl(const std::string& name, const std::string& value);

}  // namespace portwatch::testing
