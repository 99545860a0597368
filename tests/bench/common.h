#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace portwatch::bench {

// What the scrape benchmark and the pods benchmark share: their argument parsing, the report's
// formatting and the preparation of each size's run.

/// The median of `values` (0 when empty).
double Median(std::vector<double> values);
/// Prints a line of the report and flushes it (the child of each size writes too).
void Say(const std::string& line);
/// `value` through a printf format.
std::string Format(const char* format, double value);
/// Seconds as milliseconds, with more digits below 10 ms.
std::string Ms(double seconds);
/// 100000 as "100k", 1000000 as "1M".
std::string HumanCount(uint64_t n);
/// A table size argument ("100k", "1M", "20000"): false when it is not one (100 to 5M).
bool ParseSize(const std::string& text, uint64_t& size);
/// Whether an IPv6 loopback socket can be bound here (a namespace without IPv6 cannot).
bool Ipv6Loopback();
/// Waits (bounded) until the previous namespace's sockets are gone from the kernel: dumps walk
/// the whole host-wide hash table, so leftovers would slow every measurement down. `baseline` is
/// KernelTcpObjects() before (negative: unknown, no wait).
void WaitForKernelToSettle(int64_t baseline);

}  // namespace portwatch::bench
