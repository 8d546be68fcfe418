#include "adapters/tls_client.hpp"

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

namespace wf::adapters {

std::string DescribeRefusedCertificate(bool preverified, boost::asio::ssl::verify_context& context,
                                       const std::string& host) {
  int code = X509_STORE_CTX_get_error(context.native_handle());
  if (preverified || code == X509_V_OK) return "the certificate does not name host '" + host + "'";
  return X509_verify_cert_error_string(code);
}

}  // namespace wf::adapters
