#include "tests/support/test_ca.h"

#include <fstream>
#include <utility>
#include <vector>

#include "tests/support/exporter_process.h"

namespace portwatch::testing {

namespace {

/// Runs `openssl ARGS...`; an error message naming the command, empty on success.
std::string Openssl(std::vector<std::string> args) {
  args.insert(args.begin(), "openssl");
  std::string output;
  if (RunCommand(args, output) == 0) {
    return "";
  }
  std::string command;
  for (const std::string& arg : args) {
    command += (command.empty() ? "" : " ") + arg;
  }
  return command + " failed: " + output;
}

}  // namespace

std::string MakeTestCertificates(const std::filesystem::path& dir, TestCertificates& out) {
  const auto file = [&](const std::string& name) { return dir / name; };
  out = TestCertificates{file("ca.crt"),     file("ca.key"),     file("server.crt"),
                         file("server.key"), file("client.crt"), file("client.key")};
  std::string error =
      Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
               "-days", "2", "-subj", "/CN=portwatch test CA", "-keyout", out.ca_key.string(),
               "-out", out.ca_cert.string()});
  if (!error.empty()) {
    return error;
  }
  for (const auto& [name, extensions] : std::vector<std::pair<std::string, std::string>>{
           {"server", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"},
           {"client",
            std::string("subjectAltName=DNS:") + kClientSan + "\nextendedKeyUsage=clientAuth\n"}}) {
    const std::string ext = file(name + ".ext").string();
    const std::string csr = file(name + ".csr").string();
    std::ofstream(ext) << extensions;
    error = Openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-subj", "/CN=" + name, "-keyout", file(name + ".key").string(), "-out", csr});
    if (error.empty()) {
      error = Openssl({"x509", "-req", "-in", csr, "-CA", out.ca_cert.string(), "-CAkey",
                       out.ca_key.string(), "-CAcreateserial", "-days", "2", "-extfile", ext,
                       "-out", file(name + ".crt").string()});
    }
    if (!error.empty()) {
      return error;
    }
  }
  return "";
}

}  // namespace portwatch::testing
