#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "collectors/common/result.h"

namespace portwatch {

/// Reads the next bytes of a walk into the buffer: their count, 0 at the end, or -errno (a BPF
/// iterator fd's read(); a fixture in tests).
using ReadWalkBytes = std::function<ssize_t(std::span<std::byte> buffer)>;

/// The shape of one BPF iterator walk's output: fixed-size records, each starting with its kind
/// byte, and after the last one a trailer of the same size that says the walk reached its end
/// (collectors/bpf/socket_iter_abi.h, owner_iter_abi.h).
struct RecordWalkFormat {
  std::string name;  ///< how errors name the walk: "socket iterator"
  size_t record_size = 0;
  uint8_t record_kind = 0;
  uint8_t trailer_kind = 0;
};

/// Reads one walk to its end and hands `on_record` every record's bytes (record_size of them),
/// in order. Fails, naming the walk, on a read error, a record of an unknown kind, anything after
/// the trailer, a walk that ends inside a record or without its trailer; the records before the
/// failure have been handed on. EAGAIN (the kernel stops a read() after a million objects shown
/// with nothing written) and EINTR read again, a bounded number of times in a row.
Status ReadRecordWalk(const ReadWalkBytes& read, const RecordWalkFormat& format,
                      const std::function<void(const std::byte* record)>& on_record);

}  // namespace portwatch
