#include "collectors/port_holders/port_holders.h"

#include <set>
#include <utility>

namespace portwatch {

const std::vector<ProcessInfo>& PortHolders::ProcessesOf(const HeldSocket& socket) const {
  static const std::vector<ProcessInfo> kNone;
  if (socket.record.inode == 0) {
    return kNone;
  }
  auto found = owners.by_inode.find(socket.record.inode);
  return found != owners.by_inode.end() ? found->second : kNone;
}

std::vector<ProcessInfo> PortHolders::Processes() const {
  std::vector<ProcessInfo> processes;
  std::set<pid_t> seen;
  for (const HeldSocket& socket : sockets) {
    for (const ProcessInfo& process : ProcessesOf(socket)) {
      if (seen.insert(process.pid).second) {
        processes.push_back(process);
      }
    }
  }
  return processes;
}

bool PortHolders::HasInvisibleHolders() const {
  for (const HeldSocket& socket : sockets) {
    if (socket.record.inode != 0 && ProcessesOf(socket).empty()) {
      return true;
    }
  }
  return false;
}

std::map<std::string, uint64_t> PortHolders::CountByState() const {
  std::map<std::string, uint64_t> counts;
  for (const HeldSocket& socket : sockets) {
    counts[std::string(netlink::StateName(socket.record.state))]++;
  }
  return counts;
}

std::string PortHolders::UnreadText() const {
  std::string text;
  for (const UnreadTable& table : unread) {
    text += (text.empty() ? "" : ", ") + netlink::TableName(table.protocol, table.family) +
            (table.error.empty() ? "" : " (" + table.error + ")");
  }
  return text;
}

OwnerResolver ProcOwnerResolver(ProcFs procfs, bool command_lines) {
  return [procfs = std::move(procfs), command_lines](const std::unordered_set<uint32_t>& inodes) {
    SocketOwners owners = FindSocketOwners(procfs, inodes);
    if (!command_lines) {
      for (auto& [inode, processes] : owners.by_inode) {
        for (ProcessInfo& process : processes) {
          process.cmdline.clear();
        }
      }
    }
    return owners;
  };
}

PortHolders FindPortHolders(netlink::Transport& transport, const PortQuery& query,
                            const OwnerResolver& resolve_owners) {
  PortHolders holders;
  if (query.ports.empty()) {
    return holders;  // an empty port filter would mean "every socket"
  }
  for (netlink::Protocol protocol : query.protocols) {
    for (netlink::Family family : query.families) {
      const netlink::DumpResult result =
          netlink::Dump(transport, {protocol, family, query.states, query.ports},
                        [&holders, protocol](const netlink::SocketRecord& record) {
                          holders.sockets.push_back({protocol, record});
                        });
      if (result.outcome == netlink::DumpOutcome::kFailed ||
          result.outcome == netlink::DumpOutcome::kUnsupported) {
        holders.unread.push_back({protocol, family, result.outcome, result.error});
      }
    }
  }
  std::unordered_set<uint32_t> inodes;
  for (const HeldSocket& socket : holders.sockets) {
    if (socket.record.inode != 0) {
      inodes.insert(socket.record.inode);
    }
  }
  if (!inodes.empty() && resolve_owners) {
    holders.owners = resolve_owners(inodes);
  }
  return holders;
}

}  // namespace portwatch
