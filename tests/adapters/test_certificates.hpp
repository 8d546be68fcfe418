#pragma once

// Throwaway certificates for the adapters' TLS tests, made once per test run with the `openssl`
// command in a temporary folder (removed at exit): a CA, a server certificate for DNS name
// "localhost" only, and one for IP address 127.0.0.1 only, both signed by the CA. A test that
// cannot make them fails (REQUIRE) with the path of openssl's log.

#include <memory>
#include <string>

#include "adapters/asio.hpp"

#include <boost/asio/ssl.hpp>

namespace wf::adapters::testing {

struct TestCertificates {
  std::string ca;              // the CA's certificate (PEM): a `ca_file`/`ca` setting
  std::string localhost_cert;  // names DNS "localhost", not 127.0.0.1
  std::string localhost_key;
  std::string loopback_address_cert;  // names IP 127.0.0.1, not "localhost"
  std::string loopback_address_key;
};

// Makes the certificates on first use; thread-safe.
const TestCertificates& Certificates();

// A TLS server context presenting the "localhost" certificate, or the 127.0.0.1 one.
std::unique_ptr<boost::asio::ssl::context> ServerTlsContext(bool for_loopback_address = false);

}  // namespace wf::adapters::testing
