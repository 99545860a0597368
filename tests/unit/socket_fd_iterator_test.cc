#include "collectors/procfs/socket_fd_iterator.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/bpf/owner_iter_abi.h"
#include "collectors/netlink/transport.h"

namespace portwatch {
namespace {

portwatch_owner_record Record(uint32_t inode, uint32_t tgid, uint32_t fd) {
  portwatch_owner_record record{};
  record.kind = PORTWATCH_OWNER_ITER_RECORD;
  record.inode = inode;
  record.tgid = tgid;
  record.fd = fd;
  return record;
}

portwatch_owner_trailer Trailer(uint64_t objects) {
  portwatch_owner_trailer trailer{};
  trailer.kind = PORTWATCH_OWNER_ITER_TRAILER;
  trailer.objects = objects;
  return trailer;
}

template <typename T>
void Append(std::vector<std::byte>& bytes, const T& value) {
  const auto* begin = reinterpret_cast<const std::byte*>(&value);
  bytes.insert(bytes.end(), begin, begin + sizeof(value));
}

/// Three records then the trailer, as one walk writes them.
std::vector<std::byte> ThreeRecordsAndTrailer() {
  std::vector<std::byte> bytes;
  Append(bytes, Record(4242, 123, 3));
  Append(bytes, Record(4242, 124, 3));
  Append(bytes, Record(777, 456, 0));
  Append(bytes, Trailer(981));
  return bytes;
}

const std::vector<SocketFd> kThreeRecords = {{4242, 123, 3}, {4242, 124, 3}, {777, 456, 0}};

/// Serves `chunks` in order, one per read (a chunk with `error` returns -error instead), then 0.
struct Chunk {
  std::vector<std::byte> bytes;
  int error = 0;
};
class FakeWalk {
 public:
  explicit FakeWalk(std::deque<Chunk> chunks) : chunks_(std::move(chunks)) {}
  ReadWalkBytes Reader() {
    return [this](std::span<std::byte> buffer) -> ssize_t {
      ++reads_;
      if (chunks_.empty()) {
        return 0;
      }
      Chunk chunk = std::move(chunks_.front());
      chunks_.pop_front();
      if (chunk.error != 0) {
        return -chunk.error;
      }
      EXPECT_LE(chunk.bytes.size(), buffer.size());
      std::memcpy(buffer.data(), chunk.bytes.data(), chunk.bytes.size());
      return static_cast<ssize_t>(chunk.bytes.size());
    };
  }
  int Reads() const { return reads_; }

 private:
  std::deque<Chunk> chunks_;
  int reads_ = 0;
};

std::vector<std::byte> Slice(const std::vector<std::byte>& bytes, size_t from, size_t to) {
  return {bytes.begin() + static_cast<ptrdiff_t>(from), bytes.begin() + static_cast<ptrdiff_t>(to)};
}

TEST(ReadOwnerWalkTest, RecordSizeIsTheAbisOwn) {
  EXPECT_EQ(sizeof(portwatch_owner_record), 16U);
  EXPECT_EQ(sizeof(portwatch_owner_trailer), 16U);
  EXPECT_EQ(PORTWATCH_OWNER_ITER_RECORD_SIZE, 16);
}

TEST(ReadOwnerWalkTest, ReadsEveryRecordInOrderUntilTheTrailer) {
  FakeWalk walk({{ThreeRecordsAndTrailer()}});
  Result<std::vector<SocketFd>> found = ReadOwnerWalk(walk.Reader());
  ASSERT_TRUE(found) << found.Error();
  EXPECT_EQ(*found, kThreeRecords);
  EXPECT_EQ(walk.Reads(), 2);  // the bytes, then the end
}

TEST(ReadOwnerWalkTest, AnEmptyWalkIsOnlyATrailer) {
  std::vector<std::byte> bytes;
  Append(bytes, Trailer(0));
  FakeWalk walk({{bytes}});
  Result<std::vector<SocketFd>> found = ReadOwnerWalk(walk.Reader());
  ASSERT_TRUE(found) << found.Error();
  EXPECT_TRUE(found->empty());
}

TEST(ReadOwnerWalkTest, RecordsSplitAcrossReadsAreJoined) {
  const std::vector<std::byte> bytes = ThreeRecordsAndTrailer();
  // 5 bytes, then 20 (the rest of the first record and 9 of the second), then 1, then the rest.
  FakeWalk walk({{Slice(bytes, 0, 5)},
                 {Slice(bytes, 5, 25)},
                 {Slice(bytes, 25, 26)},
                 {Slice(bytes, 26, bytes.size())}});
  Result<std::vector<SocketFd>> found = ReadOwnerWalk(walk.Reader());
  ASSERT_TRUE(found) << found.Error();
  EXPECT_EQ(*found, kThreeRecords);
}

TEST(ReadOwnerWalkTest, EveryByteInItsOwnRead) {
  const std::vector<std::byte> bytes = ThreeRecordsAndTrailer();
  std::deque<Chunk> chunks;
  for (size_t at = 0; at < bytes.size(); ++at) {
    chunks.push_back({Slice(bytes, at, at + 1)});
  }
  FakeWalk walk(std::move(chunks));
  Result<std::vector<SocketFd>> found = ReadOwnerWalk(walk.Reader());
  ASSERT_TRUE(found) << found.Error();
  EXPECT_EQ(*found, kThreeRecords);
  EXPECT_EQ(walk.Reads(), 65);
}

TEST(ReadOwnerWalkTest, EagainAndEintrReadAgain) {
  const std::vector<std::byte> bytes = ThreeRecordsAndTrailer();
  FakeWalk walk({{{}, EAGAIN},
                 {{}, EAGAIN},
                 {Slice(bytes, 0, 20)},
                 {{}, EINTR},
                 {Slice(bytes, 20, bytes.size())}});
  Result<std::vector<SocketFd>> found = ReadOwnerWalk(walk.Reader());
  ASSERT_TRUE(found) << found.Error();
  EXPECT_EQ(*found, kThreeRecords);
  EXPECT_EQ(walk.Reads(), 6);
}

TEST(ReadOwnerWalkTest, EagainWithoutEndFailsAfter64InARow) {
  std::deque<Chunk> chunks(65, Chunk{{}, EAGAIN});
  FakeWalk walk(std::move(chunks));
  Result<std::vector<SocketFd>> found = ReadOwnerWalk(walk.Reader());
  ASSERT_FALSE(found);
  EXPECT_EQ(found.Error(),
            "socket owner walk: read: Resource temporarily unavailable 65 times in a row");
  EXPECT_EQ(walk.Reads(), 65);
}

TEST(ReadOwnerWalkTest, SixtyFourEagainsThenDataStillSucceed) {
  std::deque<Chunk> chunks(64, Chunk{{}, EAGAIN});
  chunks.push_back({ThreeRecordsAndTrailer()});
  FakeWalk walk(std::move(chunks));
  Result<std::vector<SocketFd>> found = ReadOwnerWalk(walk.Reader());
  ASSERT_TRUE(found) << found.Error();
  EXPECT_EQ(found->size(), 3U);
}

TEST(ReadOwnerWalkTest, MissingTrailerFails) {
  std::vector<std::byte> bytes;
  Append(bytes, Record(4242, 123, 3));
  FakeWalk walk({{bytes}});
  Result<std::vector<SocketFd>> found = ReadOwnerWalk(walk.Reader());
  ASSERT_FALSE(found);
  EXPECT_EQ(found.Error(), "socket owner walk: the walk ended without its trailer");
}

TEST(ReadOwnerWalkTest, EndInsideARecordFails) {
  const std::vector<std::byte> bytes = ThreeRecordsAndTrailer();
  FakeWalk walk({{Slice(bytes, 0, 40)}});
  Result<std::vector<SocketFd>> found = ReadOwnerWalk(walk.Reader());
  ASSERT_FALSE(found);
  EXPECT_EQ(found.Error(), "socket owner walk: the walk ended inside a record");
}

TEST(ReadOwnerWalkTest, BytesAfterTheTrailerFail) {
  std::vector<std::byte> bytes = ThreeRecordsAndTrailer();
  Append(bytes, Record(1, 2, 3));
  FakeWalk walk({{bytes}});
  Result<std::vector<SocketFd>> found = ReadOwnerWalk(walk.Reader());
  ASSERT_FALSE(found);
  EXPECT_EQ(found.Error(), "socket owner walk: data after the end of the walk");
}

TEST(ReadOwnerWalkTest, UnknownRecordKindFails) {
  std::vector<std::byte> bytes;
  portwatch_owner_record odd = Record(4242, 123, 3);
  odd.kind = 0x51;  // a socket iterator's record: the wrong program behind the fd
  Append(bytes, odd);
  Append(bytes, Trailer(1));
  FakeWalk walk({{bytes}});
  Result<std::vector<SocketFd>> found = ReadOwnerWalk(walk.Reader());
  ASSERT_FALSE(found);
  EXPECT_EQ(found.Error(), "socket owner walk: unknown record kind 81");
}

TEST(ReadOwnerWalkTest, ReadErrorFails) {
  const std::vector<std::byte> bytes = ThreeRecordsAndTrailer();
  FakeWalk walk({{Slice(bytes, 0, 16)}, {{}, EIO}});
  Result<std::vector<SocketFd>> found = ReadOwnerWalk(walk.Reader());
  ASSERT_FALSE(found);
  EXPECT_EQ(found.Error(), "socket owner walk: read: Input/output error");
}

TEST(ReadOwnerWalkTest, ReadsAWalkFromAPipe) {
  // The bytes through a real fd, as the iterator fd gives them, written in two uneven parts.
  int ends[2];
  ASSERT_EQ(::pipe2(ends, O_CLOEXEC), 0);
  netlink::UniqueFd reader(ends[0]);
  netlink::UniqueFd writer(ends[1]);
  const std::vector<std::byte> bytes = ThreeRecordsAndTrailer();
  ASSERT_EQ(::write(writer.Get(), bytes.data(), 21), 21);
  ASSERT_EQ(::write(writer.Get(), bytes.data() + 21, bytes.size() - 21),
            static_cast<ssize_t>(bytes.size() - 21));
  writer = netlink::UniqueFd();
  Result<std::vector<SocketFd>> found =
      ReadOwnerWalk([fd = reader.Get()](std::span<std::byte> buffer) -> ssize_t {
        const ssize_t got = ::read(fd, buffer.data(), buffer.size());
        return got >= 0 ? got : -errno;
      });
  ASSERT_TRUE(found) << found.Error();
  EXPECT_EQ(*found, kThreeRecords);
}

TEST(KernelSocketFdFinderTest, NoStrategyForAFixtureTree) {
  // The iterator reports the kernel's processes: wrong against a fake /proc.
  EXPECT_FALSE(KernelSocketFdFinder(ProcFs(::testing::TempDir())));
  EXPECT_TRUE(KernelSocketFdFinder(ProcFs()));
}

}  // namespace
}  // namespace portwatch
