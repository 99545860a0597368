#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace portwatch {

/// What decides when a pod's sockets are read in full.
struct PodReadState {
  uint64_t inode = 0;
  /// The namespace has a TCP established hash of its own: its dump walks only its own sockets.
  bool private_hash = false;
  std::optional<std::chrono::steady_clock::time_point> last_read;  ///< nullopt: never read
};

/// The order in which to read pods this scrape. Pods with a private hash come first: their dump
/// costs only their own sockets, so they are read at every scrape. Then the others, never read
/// first, then least recently read first: each of their dumps walks every TCP socket of the node,
/// so the caller reads them only while a budget lasts (at least one per scrape), and each is read
/// again within as many scrapes as there are such pods.
std::vector<uint64_t> PodReadOrder(std::vector<PodReadState> pods);

}  // namespace portwatch
