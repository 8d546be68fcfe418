#pragma once

// wf serve's TLS (DESIGN.md, "`wf serve`"): the deployment's identity as the server certificate,
// client certificates asked for and checked against the identity's CA, the client named by its
// certificate's CN. Included only by server.cpp and tls.cpp: it brings in OpenSSL.

#include <memory>
#include <string>

#include "adapters/asio.hpp"

#include <boost/asio/ssl.hpp>

#include "engine/config.hpp"
#include "workflows/status.hpp"

namespace wf::server {

// A TLS 1.2+ server context presenting `identity.cert` and `identity.key`, asking every client
// for a certificate and verifying it against `identity.ca`. The handshake never fails for the
// client certificate itself (absent, or not verifying): IdentifyClient tells, so that the client
// gets a 401 it can read instead of a broken handshake. kInvalid naming the file OpenSSL cannot
// load, a key that does not match the certificate, or a certificate whose CN is not
// `identity.name`.
Result<std::unique_ptr<boost::asio::ssl::context>> ServerTlsContext(
    const engine::Identity& identity);

// After the handshake: the client certificate's CN into `*client` when it verified, else
// `*unauthenticated` says why (no certificate; one that does not verify, with OpenSSL's reason).
void IdentifyClient(SSL* ssl, std::string* client, std::string* unauthenticated);

// The CN of `certificate`'s subject; empty when it has none.
std::string CommonName(X509* certificate);

}  // namespace wf::server
