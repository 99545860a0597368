#include "collectors/common/record_walk.h"

#include <cerrno>
#include <cstring>
#include <vector>

namespace portwatch {

namespace {

/// The kernel fills at most 32 KiB per read() (bpf_seq_read's buffer); at least twice that, a
/// whole number of records, so that a read never splits one in the usual case.
constexpr size_t kReadBufferBytes = size_t{64} * 1024;

/// EAGAIN comes after a million objects shown in one read() with nothing written: rare in a walk
/// that writes what it finds, so this many in a row mean something else is wrong.
constexpr int kMaxRetriesInARow = 64;

}  // namespace

Status ReadRecordWalk(const ReadWalkBytes& read, const RecordWalkFormat& format,
                      const std::function<void(const std::byte* record)>& on_record) {
  const size_t size = format.record_size;
  const auto failed = [&format](const std::string& what) {
    return Failure{format.name + ": " + what};
  };
  std::vector<std::byte> buffer((kReadBufferBytes / size + 1) * size);
  size_t held = 0;  // bytes of an incomplete record kept from the previous read
  bool trailer_seen = false;
  int retries = 0;
  for (;;) {
    const ssize_t got = read(std::span(buffer).subspan(held));
    if (got == -EAGAIN || got == -EINTR) {
      if (++retries > kMaxRetriesInARow) {
        return failed(ErrnoText("read", static_cast<int>(-got)) + " " + std::to_string(retries) +
                      " times in a row");
      }
      continue;
    }
    if (got < 0) {
      return failed(ErrnoText("read", static_cast<int>(-got)));
    }
    retries = 0;
    if (got == 0) {
      break;
    }
    held += static_cast<size_t>(got);
    size_t offset = 0;
    for (; held - offset >= size; offset += size) {
      const std::byte* bytes = buffer.data() + offset;
      if (trailer_seen) {
        return failed("data after the end of the walk");
      }
      const auto kind = static_cast<uint8_t>(bytes[0]);
      if (kind == format.trailer_kind) {
        trailer_seen = true;
      } else if (kind == format.record_kind) {
        on_record(bytes);
      } else {
        return failed("unknown record kind " + std::to_string(kind));
      }
    }
    held -= offset;
    std::memmove(buffer.data(), buffer.data() + offset, held);
  }
  if (held != 0) {
    return failed("the walk ended inside a record");
  }
  if (!trailer_seen) {
    return failed("the walk ended without its trailer");
  }
  return {};
}

}  // namespace portwatch
