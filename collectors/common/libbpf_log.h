#pragma once

namespace portwatch {

/// Sends libbpf's own messages (a refused load, a missing BTF type) to the structured log at
/// debug level instead of libbpf's default, raw lines on stderr; the exporter logs every failure
/// that matters itself, once, with its cost. Idempotent; call before any BPF object is opened.
void RouteLibbpfLogs();

}  // namespace portwatch
