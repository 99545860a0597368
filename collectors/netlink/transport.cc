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
constexpr uint32_t kRecordReceiveFailure = 4;
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

Result<std::unique_ptr<KernelTransport>> KernelTransport::Open() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!fd.Valid()) {
    return Failure{ErrnoText("netlink sock_diag socket", errno)};
  }
  return Adopt(std::move(fd));
}

Result<std::unique_ptr<KernelTransport>> KernelTransport::Adopt(UniqueFd fd) {
  // Best effort: a small default buffer only costs more wake-ups, never correctness.
  ::setsockopt(fd.Get(), SOL_SOCKET, SO_RCVBUF, &kReceiveBufferBytes, sizeof(kReceiveBufferBytes));
  sockaddr_nl local{};
  socklen_t length = sizeof(local);
  if (::getsockname(fd.Get(), reinterpret_cast<sockaddr*>(&local), &length) != 0) {
    return Failure{ErrnoText("netlink getsockname", errno)};
  }
  if (local.nl_pid == 0) {  // not bound yet: let the kernel pick the port id
    local = sockaddr_nl{};
    local.nl_family = AF_NETLINK;
    if (::bind(fd.Get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
      return Failure{ErrnoText("netlink bind", errno)};
    }
    length = sizeof(local);
    if (::getsockname(fd.Get(), reinterpret_cast<sockaddr*>(&local), &length) != 0) {
      return Failure{ErrnoText("netlink getsockname", errno)};
    }
  }
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return std::unique_ptr<KernelTransport>(
      new KernelTransport(std::move(fd), local.nl_pid, static_cast<uint32_t>(now.tv_nsec)));
}

Status KernelTransport::Send(std::span<const std::byte> request) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  while (true) {
    ssize_t sent = ::sendto(fd_.Get(), request.data(), request.size(), 0,
                            reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
    if (sent >= 0) {
      return {};
    }
    if (errno != EINTR) {
      return Failure{ErrnoText("netlink send", errno)};
    }
  }
}

Result<Received> KernelTransport::Receive(std::span<std::byte> buffer) {
  while (true) {
    sockaddr_nl source{};
    iovec io{buffer.data(), buffer.size()};
    msghdr message{};
    message.msg_name = &source;
    message.msg_namelen = sizeof(source);
    message.msg_iov = &io;
    message.msg_iovlen = 1;
    ssize_t received = ::recvmsg(fd_.Get(), &message, 0);
    if (received < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Failure{ReceiveErrorText(errno)};
    }
    // Any process may send to this socket's port id; only the kernel (port id 0) answers dumps.
    if (message.msg_namelen < sizeof(source) || source.nl_family != AF_NETLINK ||
        source.nl_pid != 0) {
      foreign_datagrams_++;
      continue;
    }
    return Received{static_cast<size_t>(received), (message.msg_flags & MSG_TRUNC) != 0};
  }
}

TransportFactory KernelTransportFactory() {
  return []() -> Result<std::unique_ptr<Transport>> {
    Result<std::unique_ptr<KernelTransport>> opened = KernelTransport::Open();
    if (!opened) {
      return Failure{opened.Error()};
    }
    return std::unique_ptr<Transport>(std::move(opened).Value());
  };
}

std::string ReceiveErrorText(int error) { return ErrnoText("netlink receive", error); }

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

Status RecordingTransport::Send(std::span<const std::byte> request) {
  // The port id after the send: a replay source only knows it once it has seen the request.
  Status sent = inner_.Send(request);
  Write(kRecordRequest, inner_.PortId(), request);
  return sent;
}

Result<Received> RecordingTransport::Receive(std::span<std::byte> buffer) {
  Result<Received> received = inner_.Receive(buffer);
  if (!received) {
    const std::string& text = received.Error();
    Write(kRecordReceiveFailure, 0, std::as_bytes(std::span(text.data(), text.size())));
  } else {
    Write(kRecordDatagram, received->truncated ? 1 : 0,
          buffer.first(std::min(received->length, buffer.size())));
  }
  out_.flush();
  return received;
}

ReplayTransport::ReplayTransport(std::vector<Exchange> exchanges)
    : exchanges_(std::move(exchanges)) {}

Result<std::unique_ptr<ReplayTransport>> ReplayTransport::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[sizeof(kRecordingMagic)] = {};
  if (!in.read(magic, sizeof(magic)) || std::memcmp(magic, kRecordingMagic, sizeof(magic)) != 0) {
    return Failure{path + ": not a portwatch netlink recording"};
  }
  // Every length a record header claims is checked against what the file still holds before
  // anything is allocated for it: a lying header must not cost 4 GiB.
  const std::streamoff file_size = in.seekg(0, std::ios::end).tellg();
  if (file_size < 0 || !in.seekg(sizeof(magic))) {
    return Failure{path + ": cannot find the recording's size"};
  }
  std::vector<Exchange> exchanges;
  uint32_t header[3];
  while (in.peek() != std::char_traits<char>::eof()) {
    if (!in.read(reinterpret_cast<char*>(header), sizeof(header))) {
      return Failure{path + ": truncated record"};
    }
    const std::streamoff left = file_size - in.tellg();
    if (header[2] > left) {
      return Failure{path + ": truncated record (its header claims " + std::to_string(header[2]) +
                     " bytes, the file has " + std::to_string(left) + " left)"};
    }
    std::vector<std::byte> bytes(header[2]);
    if (!in.read(reinterpret_cast<char*>(bytes.data()),
                 static_cast<std::streamsize>(bytes.size()))) {
      return Failure{path + ": truncated record"};
    }
    if (header[0] == kRecordRequest) {
      exchanges.push_back(Exchange{std::move(bytes), header[1], {}, {}, ""});
      continue;
    }
    if (exchanges.empty()) {
      return Failure{path + ": reply recorded before any request"};
    }
    if (header[0] == kRecordDatagram) {
      exchanges.back().datagrams.push_back(std::move(bytes));
      exchanges.back().truncated.push_back(header[1] != 0);
    } else if (header[0] == kRecordReceiveError) {
      // Older recordings: a positive errno. Anything else is no errno strerror() can name.
      if (header[1] == 0 || header[1] > kMaxErrno) {
        return Failure{path + ": bad errno " + std::to_string(header[1]) +
                       " in a receive error record"};
      }
      exchanges.back().receive_error = ReceiveErrorText(static_cast<int>(header[1]));
    } else if (header[0] == kRecordReceiveFailure) {
      if (bytes.empty()) {
        return Failure{path + ": empty receive failure record"};
      }
      exchanges.back().receive_error.assign(reinterpret_cast<const char*>(bytes.data()),
                                            bytes.size());
    } else {
      return Failure{path + ": unknown record kind " + std::to_string(header[0])};
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

Status ReplayTransport::Send(std::span<const std::byte> request) {
  if (next_exchange_ >= exchanges_.size()) {
    return Failure{ErrnoText("netlink send", ENODATA)};
  }
  const Exchange& exchange = exchanges_[next_exchange_];
  if (!std::equal(request.begin(), request.end(), exchange.request.begin(),
                  exchange.request.end())) {
    return Failure{ErrnoText("netlink send", EPROTO)};
  }
  current_ = &exchange;
  port_id_ = exchange.port_id;
  next_exchange_++;
  next_datagram_ = 0;
  return {};
}

Result<Received> ReplayTransport::Receive(std::span<std::byte> buffer) {
  if (current_ == nullptr) {
    return Failure{ReceiveErrorText(ENOTCONN)};
  }
  if (next_datagram_ >= current_->datagrams.size()) {
    return Failure{current_->receive_error.empty() ? ReceiveErrorText(EAGAIN)
                                                   : current_->receive_error};
  }
  const std::vector<std::byte>& datagram = current_->datagrams[next_datagram_];
  const bool truncated = current_->truncated[next_datagram_] || datagram.size() > buffer.size();
  next_datagram_++;
  size_t copied = std::min(buffer.size(), datagram.size());
  if (copied > 0) {  // an empty datagram's data() may be null, which memcpy must not get
    std::memcpy(buffer.data(), datagram.data(), copied);
  }
  return Received{copied, truncated};
}

}  // namespace portwatch::netlink
