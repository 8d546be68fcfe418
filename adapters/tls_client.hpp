#pragma once

// Client-side TLS that the adapters speaking TLS share (http over https://, notify's STARTTLS):
// the per-connection set-up that sends SNI and refuses a server certificate that does not verify
// or does not name the host. Included only by those adapters' .cpp files: it brings in OpenSSL.

#include <string>

#include "adapters/asio.hpp"

#include <boost/asio/ssl.hpp>

namespace wf::adapters {

// Prepares `stream` (an asio::ssl::stream or a beast::ssl_stream, before its handshake) for a
// server named `host` (a DNS name or an IP address, without brackets): SNI when `host` is a
// name, and, when `verify`, a verify callback that accepts only a chain the context trusts whose
// certificate names `host` (DNS or IP subjectAltName). When it refuses, `*why` (which must
// outlive the handshake) gets the reason ("the certificate does not name host 'x'", or
// OpenSSL's text such as "unable to get local issuer certificate"), so that the caller can tell
// a certificate that does not verify (a permanent failure) from a broken handshake. `ec` is set
// when the callback cannot be installed.
template <class Stream>
void PrepareTlsClient(Stream& stream, const std::string& host, bool verify, std::string* why,
                      boost::system::error_code& ec);

// The reason PrepareTlsClient records for a refused certificate.
std::string DescribeRefusedCertificate(bool preverified, boost::asio::ssl::verify_context& context,
                                       const std::string& host);

template <class Stream>
void PrepareTlsClient(Stream& stream, const std::string& host, bool verify, std::string* why,
                      boost::system::error_code& ec) {
  boost::system::error_code is_name;
  asio::ip::make_address(host, is_name);
  if (is_name) SSL_set_tlsext_host_name(stream.native_handle(), host.c_str());
  if (!verify) return;
  stream.set_verify_callback(
      [check = boost::asio::ssl::host_name_verification(host), why, host](
          bool preverified, boost::asio::ssl::verify_context& context) {
        bool ok = check(preverified, context);
        if (!ok && why->empty()) *why = DescribeRefusedCertificate(preverified, context, host);
        return ok;
      },
      ec);
}

}  // namespace wf::adapters
