//! Certificates made in the test: a certificate authority of its own and a server certificate it
//! signs for `127.0.0.1` and `localhost`, written as PEM files the way an operator would have
//! them, and a second authority that signed nothing, to check refusals.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// The PEM files of one test's HTTPS set-up, in a directory of its own.
pub struct TestCerts {
    /// The authority's certificate: what clients must trust.
    pub ca: PathBuf,
    /// The server's certificate, signed by `ca`.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
    /// Another authority's certificate, which signed nothing the server presents.
    pub other_ca: PathBuf,
}

/// A self-signed certificate authority named `name`.
fn authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().expect("a CA key");
    CertifiedIssuer::self_signed(params, key).expect("a CA certificate")
}

impl TestCerts {
    /// Makes the authorities and the server's certificate, and writes them into `dir`.
    pub fn make(dir: &Path) -> TestCerts {
        let ca = authority("monitor-server test CA");
        let other = authority("some other CA");
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let mut params = CertificateParams::new(names).expect("server certificate parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "monitor-server test");
        let key = KeyPair::generate().expect("a server key");
        let cert = params.signed_by(&key, &ca).expect("a server certificate");
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            fs::write(&path, pem).expect("cannot write a PEM file");
            path
        };
        TestCerts {
            ca: write("ca.pem", ca.pem()),
            cert: write("server.pem", cert.pem()),
            key: write("server.key", key.serialize_pem()),
            other_ca: write("other-ca.pem", other.pem()),
        }
    }
}
