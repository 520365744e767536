#include "lab/internal/pki.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace netpol::lab::internal {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;

Key NewKey() {
  return Key(EVP_EC_gen("P-256"));
}

bool AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  std::unique_ptr<X509_EXTENSION, Free> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  return ext != nullptr && X509_add_ext(cert, ext.get(), -1) == 1;
}

// A certificate for `subject_key`, valid from an hour ago for ten years,
// signed by `issuer` with `issuer_key` (itself when issuer is null).
Cert NewCert(const std::string& common_name, EVP_PKEY* subject_key, X509* issuer, EVP_PKEY* issuer_key,
             bool ca) {
  Cert cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) return nullptr;
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) return nullptr;
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  const bool serial_set =
      bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) != nullptr;
  BN_free(bn);
  if (!serial_set) return nullptr;
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    return nullptr;
  }
  const bool extensions =
      ca ? AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE") &&
               AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign") &&
               AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash")
         : AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE") &&
               AddExtension(cert.get(), signer, NID_key_usage, "critical,digitalSignature") &&
               AddExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth") &&
               AddExtension(cert.get(), signer, NID_subject_alt_name, "IP:127.0.0.1,IP:::1,DNS:localhost") &&
               AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  if (!extensions || X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) return nullptr;
  return cert;
}

template <typename F>
std::string Pem(F&& write) {
  std::unique_ptr<BIO, Free> bio(BIO_new(BIO_s_mem()));
  if (!bio || !write(bio.get())) return "";
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);  // NOLINT(google-runtime-int): OpenSSL's type
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : "";
}

}  // namespace

Result<Pki> MakePki() {
  const Key ca_key = NewKey();
  const Key server_key = NewKey();
  if (!ca_key || !server_key) return Internal("cannot make the lab's keys (OpenSSL)");
  const Cert ca = NewCert("netpol-lab-ca", ca_key.get(), nullptr, ca_key.get(), true);
  if (!ca) return Internal("cannot make the lab's CA certificate (OpenSSL)");
  const Cert server = NewCert("netpol-lab-apiserver", server_key.get(), ca.get(), ca_key.get(), false);
  if (!server) return Internal("cannot make the lab API server's certificate (OpenSSL)");
  Pki pki;
  pki.ca_cert = Pem([&](BIO* b) { return PEM_write_bio_X509(b, ca.get()) == 1; });
  pki.server_cert = Pem([&](BIO* b) { return PEM_write_bio_X509(b, server.get()) == 1; });
  pki.server_key = Pem([&](BIO* b) {
    return PEM_write_bio_PrivateKey(b, server_key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
  });
  if (pki.ca_cert.empty() || pki.server_cert.empty() || pki.server_key.empty())
    return Internal("cannot write the lab's certificates as PEM (OpenSSL)");
  return pki;
}

std::string Base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

}  // namespace netpol::lab::internal
