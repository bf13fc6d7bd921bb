//! HTTPS with rustls on its `ring` provider: the server's certificate and key (`serve --tls-cert
//! --tls-key`) and the certificate authorities the commands trust (the system's, `SSL_CERT_FILE`,
//! or `--ca-cert`). Every failure is one line naming the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// rustls' cryptography, named rather than left to rustls' process-wide default: that default
/// panics when a dependency enables a second provider, and aws-lc-rs, rustls' usual one, needs
/// cmake, which the manylinux2014 wheel build does not have.
// Deprecated for lacking the post-quantum key exchange, which only aws-lc-rs offers; the classic
// ones (X25519, P-256, P-384) it keeps are what every client speaks.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate chain in a PEM file, leaf first.
fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let unreadable = |err: pem::Error| format!("cannot read the {what} {}: {err}", path.display());
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(unreadable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    if chain.is_empty() {
        return Err(format!(
            "the {what} {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(chain)
}

/// The server's TLS settings from a PEM certificate chain and its PEM private key (PKCS#8, PKCS#1
/// or SEC1); an error when either cannot be read or they do not belong together.
pub fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, String> {
    let chain = certificates(cert, "TLS certificate")?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|err| match err {
        pem::Error::NoItemsFound => format!(
            "the TLS key {} holds no PEM private key (-----BEGIN PRIVATE KEY-----)",
            key.display()
        ),
        err => format!("cannot read the TLS key {}: {err}", key.display()),
    })?;
    let mismatch = |err: rustls::Error| {
        format!(
            "the TLS certificate {} and key {} cannot be used together: {err}",
            cert.display(),
            key.display()
        )
    };
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(mismatch)?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(mismatch)?;
    Ok(config)
}

/// The certificate authorities a command trusts besides, or instead of, the system's: the
/// certificates of a PEM file given as `--ca-cert`, read when the command line is parsed.
#[derive(Clone, PartialEq)]
pub struct CaCert {
    path: PathBuf,
    certificates: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for CaCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CaCert({})", self.path.display())
    }
}

impl CaCert {
    /// Reads `text`, a path, for `--ca-cert`; the error is the reason alone, since clap names
    /// the flag.
    pub fn parse(text: &str) -> Result<CaCert, String> {
        let path = PathBuf::from(text);
        let certificates = certificates(&path, "CA certificate file")?;
        Ok(CaCert { path, certificates })
    }
}

/// The client's TLS settings: the certificates of `ca` when given, else the system's roots —
/// or the file `SSL_CERT_FILE` names, or the directories of `SSL_CERT_DIR`, when set.
pub fn client_config(ca: Option<&CaCert>) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(ca) => {
            for certificate in &ca.certificates {
                roots.add(certificate.clone()).map_err(|err| {
                    format!("the CA certificate file {}: {err}", ca.path.display())
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for err in &found.errors {
                log::warn!("while loading the system's certificate authorities: {err}");
            }
            let (_, ignored) = roots.add_parsable_certificates(found.certs);
            if ignored > 0 {
                log::debug!("{ignored} system certificate authorities could not be parsed");
            }
        }
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("cannot set up TLS: {err}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// When a request failed because the server's certificate was refused, one line saying so and
/// what to do about it; `None` for any other failure.
pub fn untrusted_certificate(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if let Some(rustls::Error::InvalidCertificate(why)) = err.downcast_ref::<rustls::Error>() {
            return Some(format!(
                "the server's TLS certificate is not trusted ({why:?}): give the certificate of \
                 the authority that signed it with --ca-cert PATH (or MONITOR_SERVER_CA_CERT, or \
                 SSL_CERT_FILE)"
            ));
        }
        // An io::Error's source() skips the error it wraps, which is where rustls' is.
        cause = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_file_is_refused_in_one_line_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for path in [&missing, &empty] {
            let err = server_config(path, path).unwrap_err();
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(!err.contains('\n'), "{err}");
            let err = CaCert::parse(path.to_str().unwrap()).unwrap_err();
            assert!(err.contains("CA certificate file"), "{err}");
        }
    }
}
