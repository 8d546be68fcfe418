#include "tests/adapters/test_certificates.hpp"

#include <catch2/catch.hpp>

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <utility>

namespace wf::adapters::testing {

namespace {

// The folder and its certificates, removed when the test program exits.
struct Folder {
  Folder() = default;
  Folder(Folder&& other) noexcept
      : dir(std::exchange(other.dir, {})), certificates(std::move(other.certificates)) {}
  ~Folder() {
    std::error_code ignored;
    if (!dir.empty()) std::filesystem::remove_all(dir, ignored);
  }
  std::filesystem::path dir;
  TestCertificates certificates;
};

}  // namespace

const TestCertificates& Certificates() {
  static const Folder folder = [] {
    Folder f;
    std::string pattern = (std::filesystem::temp_directory_path() / "wf-tls-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    f.dir = pattern;
    auto in = [&](const char* name) { return (f.dir / name).string(); };
    f.certificates = {in("ca.pem"), in("localhost.pem"), in("localhost.key"), in("loopback.pem"),
                      in("loopback.key")};
    const std::string d = f.dir.string();
    // One server certificate per name: `name` is the file stem, `san` its subjectAltName.
    auto server = [](const std::string& name, const std::string& cn, const std::string& san) {
      return "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + name +
             ".key -out " + name + ".csr -subj '/CN=" + cn + "'; printf 'subjectAltName=" + san +
             "\\nbasicConstraints=CA:FALSE\\n' > " + name + ".ext; openssl x509 -req -in " + name +
             ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -out " + name +
             ".pem -days 2 -extfile " + name + ".ext; ";
    };
    std::string script =
        "set -e; cd '" + d + "'; " +
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout ca.key -out ca.pem -days 2 -subj '/CN=wf test CA' "
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign,cRLSign; " +
        server("localhost", "localhost", "DNS:localhost") +
        server("loopback", "127.0.0.1", "IP:127.0.0.1");
    std::string command = "sh -c \"" + script + "\" > '" + d + "/openssl.log' 2>&1";
    int status = std::system(command.c_str());
    INFO("openssl failed; see " << d << "/openssl.log");
    REQUIRE(status == 0);
    return f;
  }();
  return folder.certificates;
}

std::unique_ptr<boost::asio::ssl::context> ServerTlsContext(bool for_loopback_address) {
  const TestCertificates& c = Certificates();
  auto context = std::make_unique<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
  context->use_certificate_chain_file(for_loopback_address ? c.loopback_address_cert
                                                           : c.localhost_cert);
  context->use_private_key_file(for_loopback_address ? c.loopback_address_key : c.localhost_key,
                                boost::asio::ssl::context::pem);
  return context;
}

}  // namespace wf::adapters::testing
