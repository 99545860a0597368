#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets, tests/fuzz/corpus/<target>/, from tests/fixtures.

    python3 tests/fuzz/make_corpus.py

Every seed is derived from a fixture (or is a small hand-written edge case below), so a fixture
that changes is picked up by running this again. Regression inputs (regressions/<target>/) are
never touched.
"""
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")
CORPUS = os.path.join(HERE, "corpus")
SEP = b"\xff"  # tests/fuzz/fuzz_support.h: kSeparator

NLMSG_ERROR, NLMSG_DONE, SOCK_DIAG_BY_FAMILY = 2, 3, 20
NLM_F_MULTI, NLM_F_DUMP_INTR = 0x2, 0x10
AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP = 2, 10, 6, 17
INET_DIAG_SKV6ONLY = 11
BOUND_INACTIVE = 1 << 13


def read(*parts):
    with open(os.path.join(FIXTURES, *parts), "rb") as f:
        return f.read()


def target_dir(target):
    path = os.path.join(CORPUS, target)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def write(target, name, data):
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


def recording_exchanges():
    """The exchanges of tests/fixtures/sockdiag/table.nlrec: (request, port id, datagrams)."""
    data = read("sockdiag", "table.nlrec")
    assert data[:4] == b"PWNL"
    exchanges, offset = [], 4
    while offset < len(data):
        kind, value, length = struct.unpack_from("<III", data, offset)
        body = data[offset + 12:offset + 12 + length]
        offset += 12 + length
        if kind == 1:
            exchanges.append((body, value, []))
        elif kind == 2:
            exchanges[-1][2].append(body)
    return exchanges


def record(kind, value, body):
    return struct.pack("<III", kind, value, len(body)) + body


def message(msg_type, flags, seq, pid, payload):
    length = 16 + len(payload)
    padding = b"\0" * ((4 - length % 4) % 4)
    return struct.pack("<IHHII", length, msg_type, flags, seq, pid) + payload + padding


def diag_socket(family, state, sport, inode, attributes=b""):
    msg = struct.pack("<BBBB", family, state, 0, 0)
    msg += struct.pack(">HH", sport, 0) + bytes(32) + struct.pack("<I", 0) + bytes(8)
    msg += struct.pack("<IIIII", 0, 0, 0, 0, inode)
    assert len(msg) == 72
    return msg + attributes


def attribute(attr_type, payload):
    length = 4 + len(payload)
    return struct.pack("<HH", length, attr_type) + payload + b"\0" * ((4 - length % 4) % 4)


def sock_diag_input(seq, pid, selector, flags, datagrams):
    out = struct.pack("<IIBB", seq, pid, selector, flags)
    for datagram in datagrams:
        out += struct.pack("<H", len(datagram)) + datagram
    return out


def sock_diag():
    target_dir("sock_diag")
    for i, (request, pid, datagrams) in enumerate(recording_exchanges()[:4]):
        seq = struct.unpack_from("<I", request, 8)[0]
        family, protocol = request[16], request[17]
        states = struct.unpack_from("<I", request, 20)[0]
        selector = (1 if protocol == IPPROTO_UDP else 0) | (2 if family == AF_INET6 else 0)
        selector |= 4 if states & BOUND_INACTIVE else 0
        write("sock_diag", f"recorded_{i}", sock_diag_input(seq, pid, selector, 0, datagrams))
    seq, pid = 7, 4242
    v6only = attribute(INET_DIAG_SKV6ONLY, b"\x01")
    done = message(NLMSG_DONE, NLM_F_MULTI, seq, pid, struct.pack("<i", 0))
    listener = message(SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, seq, pid,
                       diag_socket(AF_INET6, 10, 8080, 1001, v6only))
    seeds = {
        "v6only_then_done": [listener + done],
        "two_datagrams": [listener, done],
        "stray_then_done": [message(SOCK_DIAG_BY_FAMILY, 0, seq + 1, pid,
                                    diag_socket(AF_INET, 1, 1, 2)) + done],
        "interrupted": [message(SOCK_DIAG_BY_FAMILY, NLM_F_DUMP_INTR, seq, pid,
                                diag_socket(AF_INET, 6, 5000, 0)) + done],
        "error_enoent": [message(NLMSG_ERROR, 0, seq, pid, struct.pack("<i", -2) + bytes(16))],
        "done_with_error": [message(NLMSG_DONE, 0, seq, pid, struct.pack("<i", -16))],
        "short_inet_diag_msg": [message(SOCK_DIAG_BY_FAMILY, 0, seq, pid, bytes(40)) + done],
        "lying_attribute": [message(SOCK_DIAG_BY_FAMILY, 0, seq, pid,
                                    diag_socket(AF_INET6, 10, 1, 3, b"\xff\x00\x0b\x00\x01"))
                            + done],
        "no_done": [listener],
    }
    for name, datagrams in seeds.items():
        write("sock_diag", name, sock_diag_input(seq, pid, 2, 0, datagrams))
    write("sock_diag", "truncated_flag", sock_diag_input(seq, pid, 0, 1, [done]))
    write("sock_diag", "receive_error", sock_diag_input(seq, pid, 8, 105 << 1, [listener]))


def netlink_replay():
    target_dir("netlink_replay")
    write("netlink_replay", "table.nlrec", read("sockdiag", "table.nlrec"))
    exchanges = recording_exchanges()
    for i, (request, pid, datagrams) in enumerate(exchanges[:4]):
        body = b"PWNL" + record(1, pid, request)
        body += b"".join(record(2, 0, datagram) for datagram in datagrams)
        write("netlink_replay", f"exchange_{i}.nlrec", body)
    request, pid, datagrams = exchanges[3]
    write("netlink_replay", "receive_error.nlrec",
          b"PWNL" + record(1, pid, request) + record(3, 105, b""))
    write("netlink_replay", "truncated_datagram.nlrec",
          b"PWNL" + record(1, pid, request) + record(2, 1, datagrams[0]))
    write("netlink_replay", "lying_length.nlrec",
          b"PWNL" + struct.pack("<III", 1, pid, 0xFFFFFFF0) + request)
    write("netlink_replay", "reply_first.nlrec", b"PWNL" + record(2, 0, datagrams[0]))
    write("netlink_replay", "empty.nlrec", b"PWNL")


def copy_files(target, paths):
    target_dir(target)
    for path in paths:
        with open(path, "rb") as f:
            write(target, os.path.basename(path), f.read())


def config():
    directory = os.path.join(FIXTURES, "config")
    paths = sorted(os.path.join(directory, name) for name in os.listdir(directory))
    default = os.path.join(HERE, "..", "..", "exporter", "default_config.yaml")
    copy_files("config", paths + [default])


def netstat():
    target_dir("netstat")
    text = read("proc", "net", "netstat")
    write("netstat", "netstat", text)
    lines = text.splitlines(keepends=True)
    write("netstat", "tcpext_only", b"".join(lines[:2]))
    write("netstat", "mismatched", lines[0] + lines[3] if len(lines) > 3 else lines[0])
    write("netstat", "snmp_like", b"Tcp: RtoAlgorithm RtoMin\nTcp: 1 200\nUdp: InDatagrams\n"
                                  b"Udp: 18446744073709551615\n")
    write("netstat", "overflow", b"TcpExt: TW ListenDrops\nTcpExt: 18446744073709551616 -1\n")


def port_list():
    target_dir("port_list")
    write("port_list", "reserved", read("proc", "sys", "net", "ipv4", "ip_local_reserved_ports"))
    write("port_list", "range", read("proc", "sys", "net", "ipv4", "ip_local_port_range"))
    for name, text in {"empty": b"\n", "list": b"8080,9000-9010,40000\n",
                       "everything": b"0-65535\n", "bad_order": b"10-1\n",
                       "overflow": b"65536\n", "two_words": b"1 2\n"}.items():
        write("port_list", name, text)


def sysctl():
    target_dir("sysctl")
    files = [("net", "ipv4", "tcp_max_tw_buckets"), ("net", "ipv4", "ip_local_port_range"),
             ("net", "ipv4", "ip_local_reserved_ports"), ("kernel", "osrelease")]
    fields = [read("proc", "sys", *f) for f in files]
    write("sysctl", "fixture", SEP.join(fields))
    write("sysctl", "no_reserved_ports", SEP.join(fields[:2]))
    write("sysctl", "old_kernel", SEP.join(fields[:3] + [b"4.19.0-25-amd64\n"]))
    write("sysctl", "whole_range_reserved", SEP.join([fields[0], b"1024 1030\n",
                                                      b"1000-1100\n", fields[3]]))
    directory = os.path.join(FIXTURES, "procfs")
    for name in sorted(os.listdir(directory)):
        write("sysctl", name, read("procfs", name) + SEP + fields[1] + SEP + fields[2])


def proc_pid():
    target_dir("proc_pid")
    directory = os.path.join(FIXTURES, "proc")
    everyone = []
    for pid in sorted(name for name in os.listdir(directory) if name.isdigit()):
        base = os.path.join(directory, pid)
        fd_dir = os.path.join(base, "fd")
        fds = "\n".join(f"{fd}={os.readlink(os.path.join(fd_dir, fd))}"
                        for fd in sorted(os.listdir(fd_dir)))
        process = SEP.join([pid.encode(), read("proc", pid, "comm"), read("proc", pid, "cmdline"),
                            os.readlink(os.path.join(base, "exe")).encode(), fds.encode()])
        write("proc_pid", pid, process)
        everyone.append(process)
    write("proc_pid", "all", SEP.join(everyone))
    write("proc_pid", "odd_names", SEP.join([
        b"+12", b"a\n", b"", b"", b"3=socket:[1001]",
        b"0", b"b\n", b"b\0", b"/bin/b", b"00=socket:[1002]\nx=socket:[1003]",
        b"2147483648", b"c\n", b"c", b"", b"1=socket:[4294967295]\n2=socket:[4294967296]",
        b"77", b"", b"", b"", b"4=socket:[4242\n5=socket:[]\n6=socket:[+4242]",
    ]))


def owner_match():
    target_dir("owner_match")
    seeds = {
        "nginx": [b"nginx", b"^nginx: master", b"/usr/sbin/nginx", b"nginx",
                  b"nginx: master process /usr/sbin/nginx -g daemon off;", b"/usr/sbin/nginx"],
        "exe_only": [b"", b"", b"/opt/api/bin/api", b"api", b"/opt/api/bin/api --port 8080",
                     b"/opt/api/bin/api"],
        "cmdline_only": [b"", b"openhab.*", b"", b"java",
                         b"java -Dopenhab.home=/usr/share/openhab -jar x.jar", b"/usr/bin/java"],
        "no_match": [b"postgres", b"", b"", b"postmaster", b"postgres -D /data", b""],
        "classes": [b"", b"(?i)PYTHON3? -m http\\.server [0-9]+$", b"", b"python3",
                    b"python3 -m http.server 8000", b"/usr/bin/python3.11"],
    }
    for name, fields in seeds.items():
        write("owner_match", name, SEP.join(fields))


def bind_event():
    target_dir("bind_event")

    def event(netns, port, syscall, err, family, comm, pid, uid, addr, count, later):
        key = struct.pack("<IHBBHH16s", netns, port, syscall, err, family, 0, comm)
        return key + struct.pack("<II16s", pid, uid, addr) + struct.pack("<HB", count, later)

    own = 4026531840  # bind_event_fuzzer.cc: kOwnNetns
    loopback6 = bytes(15) + b"\x01"
    seeds = {
        "bind_in_use": [event(own, 8080, 1, 98, AF_INET, b"nginx", 42, 0,
                              b"\x7f\0\0\1" + bytes(12), 3, 1)],
        "mixed": [event(own, 443, 1, 13, AF_INET6, b"python3", 7, 1000, loopback6, 1, 0),
                  event(1, 0, 1, 98, AF_INET, b"worker", 8, 0, bytes(16), 10, 5),
                  event(own, 5432, 2, 98, 0, b"postgres", 9, 107, bytes(16), 2, 2),
                  event(own, 80, 3, 99, AF_INET, b"curl", 10, 0, b"\x0a\0\0\1" + bytes(12), 1, 1)],
        "odd_comm": [event(own, 9000, 1, 98, AF_INET, b"a\x01\"\\b\x7f" + b"x" * 10, 1, 0,
                           bytes(16), 4, 0)],
    }
    for name, records in seeds.items():
        write("bind_event", name, bytes([100, 0]) + b"".join(records))
    write("bind_event", "capped_own_netns", bytes([1, 3]) + b"".join(seeds["mixed"]))


def main():
    for make in (sock_diag, netlink_replay, config, netstat, port_list, sysctl, proc_pid,
                 owner_match, bind_event):
        make()
    return 0


if __name__ == "__main__":
    sys.exit(main())
