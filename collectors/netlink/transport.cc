#include "collectors/netlink/transport.h"

#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>

namespace portwatch::netlink {

namespace {

constexpr char kRecordingMagic[4] = {'P', 'W', 'N', 'L'};
constexpr uint32_t kRecordRequest = 1;
constexpr uint32_t kRecordDatagram = 2;
constexpr uint32_t kRecordReceiveError = 3;
// Linux errno values are below 4096 (MAX_ERRNO).
constexpr uint32_t kMaxErrno = 4095;
// Large enough for the 32 KiB skbs the kernel uses for big dumps.
constexpr int kReceiveBufferBytes = 1 << 20;

uint32_t SequenceFromRequest(std::span<const std::byte> request) {
  nlmsghdr header{};
  if (request.size() < sizeof(header)) {
    return 0;
  }
  std::memcpy(&header, request.data(), sizeof(header));
  return header.nlmsg_seq;
}

}  // namespace

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = other.Release();
  }
  return *this;
}

int UniqueFd::Release() { return std::exchange(fd_, -1); }

KernelTransport::KernelTransport(UniqueFd fd, uint32_t port_id, uint32_t first_sequence)
    : fd_(std::move(fd)), port_id_(port_id), sequence_(first_sequence) {}

std::unique_ptr<KernelTransport> KernelTransport::Open(std::string& error) {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!fd.Valid()) {
    error = std::string("netlink sock_diag socket: ") + std::strerror(errno);
    return nullptr;
  }
  // Best effort: a small default buffer only costs more wake-ups, never correctness.
  ::setsockopt(fd.Get(), SOL_SOCKET, SO_RCVBUF, &kReceiveBufferBytes, sizeof(kReceiveBufferBytes));
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd.Get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
    error = std::string("netlink bind: ") + std::strerror(errno);
    return nullptr;
  }
  socklen_t length = sizeof(local);
  if (::getsockname(fd.Get(), reinterpret_cast<sockaddr*>(&local), &length) != 0) {
    error = std::string("netlink getsockname: ") + std::strerror(errno);
    return nullptr;
  }
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return std::unique_ptr<KernelTransport>(
      new KernelTransport(std::move(fd), local.nl_pid, static_cast<uint32_t>(now.tv_nsec)));
}

int KernelTransport::Send(std::span<const std::byte> request) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  while (true) {
    ssize_t sent = ::sendto(fd_.Get(), request.data(), request.size(), 0,
                            reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
    if (sent >= 0) {
      return 0;
    }
    if (errno != EINTR) {
      return errno;
    }
  }
}

ssize_t KernelTransport::Receive(std::span<std::byte> buffer, bool& truncated) {
  sockaddr_nl source{};
  iovec io{buffer.data(), buffer.size()};
  msghdr message{};
  message.msg_name = &source;
  message.msg_namelen = sizeof(source);
  message.msg_iov = &io;
  message.msg_iovlen = 1;
  while (true) {
    ssize_t received = ::recvmsg(fd_.Get(), &message, 0);
    if (received >= 0) {
      truncated = (message.msg_flags & MSG_TRUNC) != 0;
      return received;
    }
    if (errno != EINTR) {
      return -errno;
    }
  }
}

RecordingTransport::RecordingTransport(Transport& inner, const std::string& path)
    : inner_(inner), out_(path, std::ios::binary | std::ios::trunc) {
  out_.write(kRecordingMagic, sizeof(kRecordingMagic));
}

void RecordingTransport::Write(uint32_t kind, uint32_t value, std::span<const std::byte> bytes) {
  const uint32_t header[3] = {kind, value, static_cast<uint32_t>(bytes.size())};
  out_.write(reinterpret_cast<const char*>(header), sizeof(header));
  out_.write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

int RecordingTransport::Send(std::span<const std::byte> request) {
  // The port id after the send: a replay source only knows it once it has seen the request.
  const int error = inner_.Send(request);
  Write(kRecordRequest, inner_.PortId(), request);
  return error;
}

ssize_t RecordingTransport::Receive(std::span<std::byte> buffer, bool& truncated) {
  ssize_t received = inner_.Receive(buffer, truncated);
  if (received < 0) {
    Write(kRecordReceiveError, static_cast<uint32_t>(-received), {});
  } else {
    Write(kRecordDatagram, truncated ? 1 : 0, buffer.first(static_cast<size_t>(received)));
  }
  out_.flush();
  return received;
}

ReplayTransport::ReplayTransport(std::vector<Exchange> exchanges)
    : exchanges_(std::move(exchanges)) {}

std::unique_ptr<ReplayTransport> ReplayTransport::Load(const std::string& path,
                                                       std::string& error) {
  std::ifstream in(path, std::ios::binary);
  char magic[sizeof(kRecordingMagic)] = {};
  if (!in.read(magic, sizeof(magic)) || std::memcmp(magic, kRecordingMagic, sizeof(magic)) != 0) {
    error = path + ": not a portwatch netlink recording";
    return nullptr;
  }
  // Every length a record header claims is checked against what the file still holds before
  // anything is allocated for it: a lying header must not cost 4 GiB.
  const std::streamoff file_size = in.seekg(0, std::ios::end).tellg();
  if (file_size < 0 || !in.seekg(sizeof(magic))) {
    error = path + ": cannot find the recording's size";
    return nullptr;
  }
  std::vector<Exchange> exchanges;
  uint32_t header[3];
  while (in.peek() != std::char_traits<char>::eof()) {
    if (!in.read(reinterpret_cast<char*>(header), sizeof(header))) {
      error = path + ": truncated record";
      return nullptr;
    }
    const std::streamoff left = file_size - in.tellg();
    if (header[2] > left) {
      error = path + ": truncated record (its header claims " + std::to_string(header[2]) +
              " bytes, the file has " + std::to_string(left) + " left)";
      return nullptr;
    }
    std::vector<std::byte> bytes(header[2]);
    if (!in.read(reinterpret_cast<char*>(bytes.data()),
                 static_cast<std::streamsize>(bytes.size()))) {
      error = path + ": truncated record";
      return nullptr;
    }
    if (header[0] == kRecordRequest) {
      exchanges.push_back(Exchange{std::move(bytes), header[1], {}, {}, 0});
      continue;
    }
    if (exchanges.empty()) {
      error = path + ": reply recorded before any request";
      return nullptr;
    }
    if (header[0] == kRecordDatagram) {
      exchanges.back().datagrams.push_back(std::move(bytes));
      exchanges.back().truncated.push_back(header[1] != 0);
    } else if (header[0] == kRecordReceiveError) {
      // Receive() returns -errno: anything but a positive errno would read as a length.
      if (header[1] == 0 || header[1] > kMaxErrno) {
        error = path + ": bad errno " + std::to_string(header[1]) + " in a receive error record";
        return nullptr;
      }
      exchanges.back().receive_errno = static_cast<int>(header[1]);
    } else {
      error = path + ": unknown record kind " + std::to_string(header[0]);
      return nullptr;
    }
  }
  return std::make_unique<ReplayTransport>(std::move(exchanges));
}

uint32_t ReplayTransport::NextSequence() {
  if (next_exchange_ >= exchanges_.size()) {
    return 0;
  }
  return SequenceFromRequest(exchanges_[next_exchange_].request);
}

int ReplayTransport::Send(std::span<const std::byte> request) {
  if (next_exchange_ >= exchanges_.size()) {
    return ENODATA;
  }
  const Exchange& exchange = exchanges_[next_exchange_];
  if (!std::equal(request.begin(), request.end(), exchange.request.begin(),
                  exchange.request.end())) {
    return EPROTO;
  }
  current_ = &exchange;
  port_id_ = exchange.port_id;
  next_exchange_++;
  next_datagram_ = 0;
  return 0;
}

ssize_t ReplayTransport::Receive(std::span<std::byte> buffer, bool& truncated) {
  if (current_ == nullptr) {
    return -ENOTCONN;
  }
  if (next_datagram_ >= current_->datagrams.size()) {
    return current_->receive_errno != 0 ? -current_->receive_errno : -EAGAIN;
  }
  const std::vector<std::byte>& datagram = current_->datagrams[next_datagram_];
  truncated = current_->truncated[next_datagram_] || datagram.size() > buffer.size();
  next_datagram_++;
  size_t copied = std::min(buffer.size(), datagram.size());
  if (copied > 0) {  // an empty datagram's data() may be null, which memcpy must not get
    std::memcpy(buffer.data(), datagram.data(), copied);
  }
  return static_cast<ssize_t>(copied);
}

}  // namespace portwatch::netlink
