#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "collectors/common/result.h"

namespace portwatch::netlink {

/// One datagram Receive() put in the caller's buffer.
struct Received {
  size_t length = 0;       ///< bytes written to the buffer
  bool truncated = false;  ///< MSG_TRUNC: the datagram was longer than the buffer
};

/// Moves netlink datagrams between the dumper and a source: the kernel, a recording, or a test.
/// Kept byte-oriented so every source goes through the same defensive parser. Failures are text
/// ("netlink send: Operation not permitted"), ready for a log line or an error metric.
class Transport {
 public:
  virtual ~Transport() = default;

  /// Sequence number the next request must carry (a replay dictates the recorded one).
  virtual uint32_t NextSequence() = 0;
  /// Sends one request message.
  virtual Status Send(std::span<const std::byte> request) = 0;
  /// Receives one datagram into `buffer`.
  virtual Result<Received> Receive(std::span<std::byte> buffer) = 0;
  /// Netlink port id replies are addressed to.
  virtual uint32_t PortId() const = 0;
};

/// Opens a transport for one scrape (or one question), or says why it cannot.
using TransportFactory = std::function<Result<std::unique_ptr<Transport>>()>;

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
  /// Opens the socket, or says why netlink is unavailable.
  static Result<std::unique_ptr<KernelTransport>> Open();
  /// A transport over a NETLINK_SOCK_DIAG socket made elsewhere: one created in another network
  /// namespace answers for that namespace wherever it is used (bound here if it is not yet).
  static Result<std::unique_ptr<KernelTransport>> Adopt(UniqueFd fd);

  uint32_t NextSequence() override { return ++sequence_; }
  Status Send(std::span<const std::byte> request) override;
  /// Only datagrams from the kernel (sender port id 0): one another process sends to this
  /// socket's port id is dropped and counted, never parsed as a reply.
  Result<Received> Receive(std::span<std::byte> buffer) override;
  uint32_t PortId() const override { return port_id_; }

  /// Datagrams dropped because they did not come from the kernel.
  uint64_t ForeignDatagrams() const { return foreign_datagrams_; }

 private:
  KernelTransport(UniqueFd fd, uint32_t port_id, uint32_t first_sequence);

  UniqueFd fd_;
  uint32_t port_id_;
  uint32_t sequence_;
  uint64_t foreign_datagrams_ = 0;
};

/// The production factory: a KernelTransport in the calling thread's network namespace.
TransportFactory KernelTransportFactory();

/// One request and the datagrams (or receive failure) that answered it.
struct Exchange {
  std::vector<std::byte> request;
  uint32_t port_id = 0;
  std::vector<std::vector<std::byte>> datagrams;
  std::vector<bool> truncated;
  /// The receive failure after the datagrams ("netlink receive: No buffer space available");
  /// empty: the source ran dry (EAGAIN).
  std::string receive_error;
};

/// The failure text of a receive that failed with `error` (a positive errno).
std::string ReceiveErrorText(int error);

/// Decorates a transport and writes every exchange to a file that ReplayTransport reads back.
/// File format: "PWNL" then records of {u32 kind, u32 value, u32 length, bytes}: kind 1 a request
/// (value = port id), 2 a datagram (value = 1 if truncated), 3 a receive error (value = positive
/// errno, no bytes; read, no longer written), 4 a receive failure (bytes = its text).
class RecordingTransport : public Transport {
 public:
  RecordingTransport(Transport& inner, const std::string& path);

  bool Ok() const { return out_.good(); }
  uint32_t NextSequence() override { return inner_.NextSequence(); }
  Status Send(std::span<const std::byte> request) override;
  Result<Received> Receive(std::span<std::byte> buffer) override;
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
  /// Loads a RecordingTransport file, or says what is wrong with it.
  static Result<std::unique_ptr<ReplayTransport>> Load(const std::string& path);

  uint32_t NextSequence() override;
  /// Fails with "netlink send: ..." when the request differs from the recorded one (Protocol
  /// error) or every recorded exchange was served (No data available).
  Status Send(std::span<const std::byte> request) override;
  Result<Received> Receive(std::span<std::byte> buffer) override;
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
