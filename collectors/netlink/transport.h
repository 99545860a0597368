#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace portwatch::netlink {

/// Moves netlink datagrams between the dumper and a source: the kernel, a recording, or a test.
/// Kept byte-oriented so every source goes through the same defensive parser.
class Transport {
 public:
  virtual ~Transport() = default;

  /// Sequence number the next request must carry (a replay dictates the recorded one).
  virtual uint32_t NextSequence() = 0;
  /// Sends one request message. Returns 0 or an errno value.
  virtual int Send(std::span<const std::byte> request) = 0;
  /// Receives one datagram. Returns its length, or -errno. `truncated` reports MSG_TRUNC.
  virtual ssize_t Receive(std::span<std::byte> buffer, bool& truncated) = 0;
  /// Netlink port id replies are addressed to.
  virtual uint32_t PortId() const = 0;
};

/// Owns an fd and closes it exactly once.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int Get() const { return fd_; }
  bool Valid() const { return fd_ >= 0; }
  int Release();

 private:
  int fd_ = -1;
};

/// NETLINK_SOCK_DIAG socket to the kernel of the calling thread's network namespace.
class KernelTransport : public Transport {
 public:
  /// Opens the socket. Returns nullptr and sets `error` when netlink is unavailable.
  static std::unique_ptr<KernelTransport> Open(std::string& error);

  uint32_t NextSequence() override { return ++sequence_; }
  int Send(std::span<const std::byte> request) override;
  ssize_t Receive(std::span<std::byte> buffer, bool& truncated) override;
  uint32_t PortId() const override { return port_id_; }

 private:
  KernelTransport(UniqueFd fd, uint32_t port_id, uint32_t first_sequence);

  UniqueFd fd_;
  uint32_t port_id_;
  uint32_t sequence_;
};

/// One request and the datagrams (or receive error) that answered it.
struct Exchange {
  std::vector<std::byte> request;
  uint32_t port_id = 0;
  std::vector<std::vector<std::byte>> datagrams;
  std::vector<bool> truncated;
  int receive_errno = 0;  ///< errno returned after the datagrams, 0 if none
};

/// Decorates a transport and writes every exchange to a file that ReplayTransport reads back.
/// File format: "PWNL" then records of {u32 kind, u32 value, u32 length, bytes}: kind 1 a request
/// (value = port id), 2 a datagram (value = 1 if truncated), 3 a receive error (value = errno).
class RecordingTransport : public Transport {
 public:
  RecordingTransport(Transport& inner, const std::string& path);

  bool Ok() const { return out_.good(); }
  uint32_t NextSequence() override { return inner_.NextSequence(); }
  int Send(std::span<const std::byte> request) override;
  ssize_t Receive(std::span<std::byte> buffer, bool& truncated) override;
  uint32_t PortId() const override { return inner_.PortId(); }

 private:
  void Write(uint32_t kind, uint32_t value, std::span<const std::byte> bytes);

  Transport& inner_;
  std::ofstream out_;
};

/// Plays back recorded exchanges in order; fails a request that differs from the recording.
class ReplayTransport : public Transport {
 public:
  explicit ReplayTransport(std::vector<Exchange> exchanges);
  /// Loads a RecordingTransport file. Returns nullptr and sets `error` on a malformed file.
  static std::unique_ptr<ReplayTransport> Load(const std::string& path, std::string& error);

  uint32_t NextSequence() override;
  int Send(std::span<const std::byte> request) override;
  ssize_t Receive(std::span<std::byte> buffer, bool& truncated) override;
  uint32_t PortId() const override { return port_id_; }

  size_t RequestsServed() const { return next_exchange_; }

 private:
  std::vector<Exchange> exchanges_;
  size_t next_exchange_ = 0;
  size_t next_datagram_ = 0;
  const Exchange* current_ = nullptr;
  uint32_t port_id_ = 0;
};

}  // namespace portwatch::netlink
