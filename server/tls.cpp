#include "server/tls.hpp"

#include <array>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace wf::server {

namespace ssl = boost::asio::ssl;

namespace {

// The CN of the certificate in PEM file `path`; empty when it cannot be read.
std::string FileCommonName(const std::string& path) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(path.c_str(), "r"), &BIO_free);
  if (!bio) return {};
  std::unique_ptr<X509, decltype(&X509_free)> certificate(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  return certificate ? CommonName(certificate.get()) : std::string();
}

}  // namespace

std::string CommonName(X509* certificate) {
  X509_NAME* subject = X509_get_subject_name(certificate);
  if (subject == nullptr) return {};
  std::array<char, 256> name{};
  int length = X509_NAME_get_text_by_NID(subject, NID_commonName, name.data(),
                                         static_cast<int>(name.size()));
  if (length <= 0) return {};
  return std::string(name.data(), static_cast<std::size_t>(length));
}

Result<std::unique_ptr<ssl::context>> ServerTlsContext(const engine::Identity& identity) {
  auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
  boost::system::error_code ec;
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                           ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                           ssl::context::no_tlsv1_1 | ssl::context::single_dh_use,
                       ec);
  const std::string where = "the deployment config's identity";
  auto failed = [&](const std::string& key, const std::string& file) {
    return Status::Invalid(where + ": " + key + " '" + file + "' cannot be loaded (" +
                           ec.message() + "); give a readable PEM file");
  };
  context->use_certificate_chain_file(identity.cert, ec);
  if (ec) return failed("cert", identity.cert);
  context->use_private_key_file(identity.key, ssl::context::pem, ec);
  if ((ec && ec.message().find("mismatch") != std::string::npos) ||
      (!ec && SSL_CTX_check_private_key(context->native_handle()) != 1)) {
    return Status::Invalid(where + ": key '" + identity.key + "' does not belong to cert '" +
                           identity.cert + "'");
  }
  if (ec) return failed("key", identity.key);
  context->load_verify_file(identity.ca, ec);
  if (ec) return failed("ca", identity.ca);
  const std::string name = FileCommonName(identity.cert);
  if (name != identity.name) {
    return Status::Invalid(where + ": name is '" + identity.name + "' but cert '" + identity.cert +
                           "' names '" + name +
                           "' (its CN); the certificate must name the deployment");
  }
  // Tell clients which CA to pick their certificate for.
  if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(identity.ca.c_str())) {
    SSL_CTX_set_client_CA_list(context->native_handle(), names);
  }
  // Ask for a client certificate; judge it after the handshake (IdentifyClient), so that a
  // client without one reads a 401 instead of a broken handshake.
  context->set_verify_mode(ssl::verify_peer, ec);
  context->set_verify_callback([](bool, ssl::verify_context&) { return true; }, ec);
  static const unsigned char kSessionContext[] = "wf serve";
  SSL_CTX_set_session_id_context(context->native_handle(), kSessionContext,
                                 sizeof(kSessionContext) - 1);
  return context;
}

void IdentifyClient(SSL* ssl, std::string* client, std::string* unauthenticated) {
  client->clear();
  unauthenticated->clear();
  std::unique_ptr<X509, decltype(&X509_free)> peer(SSL_get1_peer_certificate(ssl), &X509_free);
  if (!peer) {
    *unauthenticated =
        "no client certificate; present one that this deployment's CA signed (clients are "
        "named by their certificate's CN)";
    return;
  }
  long verified = SSL_get_verify_result(ssl);
  if (verified != X509_V_OK) {
    *unauthenticated = std::string("the client certificate does not verify: ") +
                       X509_verify_cert_error_string(verified);
    return;
  }
  std::string name = CommonName(peer.get());
  if (name.empty()) {
    *unauthenticated = "the client certificate has no CN to name the client";
    return;
  }
  *client = std::move(name);
}

}  // namespace wf::server
