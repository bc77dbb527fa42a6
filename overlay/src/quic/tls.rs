//! Who a QUIC cable talks to: self-signed certificates pinned by
//! fingerprint on both sides (mutual TLS 1.3, no web PKI).
//!
//! Each node has one certificate and its key in a PEM file made on first
//! use (mode 0600, in a 0700 directory, refused when others may read it):
//! the `cert=` option, else `$VDE_QUIC_CERT`, else `quic.pem` beside the
//! cryptcab identity (`~/.config/vde/quic.pem`). Its fingerprint is
//! `SHA256:` and the base64 of the SHA-256 of the certificate (DER), as
//! the logs and `vde_switch` print it. A peer is accepted when its
//! certificate hashes to a pinned fingerprint; signatures are checked by
//! rustls (ring) as for any TLS 1.3 handshake.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use zeroize::Zeroizing;

pub use vde_crypto::Fingerprint;

/// The ALPN both ends speak.
pub const ALPN: &[u8] = b"vde-quic/1";
/// The name in our certificates (never checked: the pin is).
pub const SERVER_NAME: &str = "vde";

/// The fingerprint of a certificate.
pub fn fingerprint(cert: &[u8]) -> Fingerprint {
    let d = ring::digest::digest(&ring::digest::SHA256, cert);
    let mut f = [0u8; 32];
    f.copy_from_slice(d.as_ref());
    Fingerprint(f)
}

/// This node's certificate and key.
pub struct Certified {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    pub path: PathBuf,
}

impl Certified {
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint(&self.cert)
    }
}

/// Where the certificate lives when no path is given.
pub fn default_path() -> io::Result<PathBuf> {
    if let Some(p) = std::env::var_os("VDE_QUIC_CERT").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let id = crate::cryptcab::identity::default_path().map_err(|_| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no certificate file: set HOME or VDE_QUIC_CERT, or give cert=FILE",
        )
    })?;
    Ok(id.with_file_name("quic.pem"))
}

/// Loads the certificate at `path` (or the default one), making it first
/// when there is none.
pub fn load_or_create(path: Option<&Path>) -> io::Result<Certified> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => default_path()?,
    };
    let ctx = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    match load(&path) {
        Ok(c) => return Ok(c),
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(ctx(e)),
        Err(_) => {}
    }
    let made = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()])
        .map_err(|e| io::Error::other(format!("cannot make a certificate: {e}")))?;
    let mut pem = Zeroizing::new(made.cert.pem());
    pem.push_str(&made.signing_key.serialize_pem());
    match crate::keyfile::create_private(&path, pem.as_bytes()) {
        Ok(()) => {
            let c = load(&path).map_err(ctx)?;
            tracing::info!(
                "made a new QUIC certificate {} in {}",
                c.fingerprint(),
                path.display()
            );
            Ok(c)
        }
        // another process made it first: use theirs
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load(&path).map_err(ctx),
        Err(e) => Err(ctx(e)),
    }
}

/// Reads a certificate file, refusing one others may read or that is not
/// ours.
pub fn load(path: &Path) -> io::Result<Certified> {
    let text = crate::keyfile::read_private(path, 64 * 1024)?;
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a certificate file ({what}; want a PEM certificate and its private key)"),
        )
    };
    let cert = CertificateDer::from_pem_slice(&text).map_err(|_| bad("no certificate"))?;
    let key = PrivateKeyDer::from_pem_slice(&text).map_err(|_| bad("no private key"))?;
    Ok(Certified {
        cert,
        key,
        path: path.to_path_buf(),
    })
}

/// Parses a pinned fingerprint: `SHA256:` and 43 base64 characters (as
/// the logs show it), or 64 hex digits, colons allowed (as `openssl x509
/// -noout -fingerprint -sha256` shows it).
pub fn parse_pin(s: &str) -> Option<Fingerprint> {
    let s = s.trim();
    let hex: String = s
        .strip_prefix("sha256 Fingerprint=")
        .unwrap_or(s)
        .chars()
        .filter(|c| *c != ':')
        .collect();
    if hex.len() == 64 && hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        let mut f = [0u8; 32];
        for (i, b) in f.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        return Some(Fingerprint(f));
    }
    Fingerprint::parse(s).filter(|_| s.starts_with("SHA256:"))
}

/// Reads a pins file: one fingerprint per line (`SHA256:…`), or PEM
/// certificates whose fingerprints are taken; `#` starts a comment.
pub fn read_pins(path: &Path) -> io::Result<Vec<Fingerprint>> {
    let text = std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("pins file {}: {e}", path.display())))?;
    let mut pins: Vec<Fingerprint> = CertificateDer::pem_slice_iter(&text)
        .filter_map(Result::ok)
        .map(|c| fingerprint(&c))
        .collect();
    let mut in_pem = false;
    for (n, line) in String::from_utf8_lossy(&text).lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.starts_with("-----BEGIN") {
            in_pem = true;
        }
        if in_pem {
            in_pem = !line.starts_with("-----END");
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or("");
        pins.push(parse_pin(first).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "pins file {} line {}: {first:?} is not a fingerprint (SHA256:…)",
                    path.display(),
                    n + 1
                ),
            )
        })?);
    }
    Ok(pins)
}

/// The fingerprints a cable accepts; shared with the handshakes, so that
/// pins can be added while it runs.
#[derive(Debug, Default)]
pub struct Pins(Mutex<Vec<Fingerprint>>);

impl Pins {
    pub fn new(pins: Vec<Fingerprint>) -> Arc<Pins> {
        Arc::new(Pins(Mutex::new(pins)))
    }

    pub fn contains(&self, f: &Fingerprint) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).contains(f)
    }

    pub fn add(&self, f: Fingerprint) {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !v.contains(&f) {
            v.push(f);
        }
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// rustls on ring (already a dependency; aws-lc-rs would need cmake).
/// rustls 0.23.48 deprecates it for lacking post-quantum key exchange:
/// the handshake uses X25519 as cryptcab's does.
fn provider() -> Arc<CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The refusal of a certificate not pinned; its text names the
/// fingerprint so that the log can say what to pin.
fn not_pinned(who: &str, f: &Fingerprint) -> rustls::Error {
    rustls::Error::General(format!("{who} certificate {f} is not pinned"))
}

/// Checks a server's certificate against the pins (client side).
#[derive(Debug)]
struct PinnedServer {
    pins: Arc<Pins>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let f = fingerprint(end_entity);
        if self.pins.contains(&f) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(not_pinned("the server's", &f))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Checks a client's certificate against the pins (server side); a
/// client without one is refused.
#[derive(Debug)]
struct PinnedClients {
    pins: Arc<Pins>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for PinnedClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let f = fingerprint(end_entity);
        if self.pins.contains(&f) {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(not_pinned("the client's", &f))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn tls_err(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("TLS setup: {e}"))
}

/// The TLS side of a dialing cable: our certificate, the server's pins.
pub fn client_config(me: &Certified, pins: Arc<Pins>) -> io::Result<rustls::ClientConfig> {
    let provider = provider();
    let mut c = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer { pins, provider }))
        .with_client_auth_cert(vec![me.cert.clone()], me.key.clone_key())
        .map_err(tls_err)?;
    c.alpn_protocols = vec![ALPN.to_vec()];
    Ok(c)
}

/// The TLS side of a listener: our certificate, the clients' pins.
pub fn server_config(me: &Certified, pins: Arc<Pins>) -> io::Result<rustls::ServerConfig> {
    let provider = provider();
    let mut c = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .with_client_cert_verifier(Arc::new(PinnedClients { pins, provider }))
        .with_single_cert(vec![me.cert.clone()], me.key.clone_key())
        .map_err(tls_err)?;
    c.alpn_protocols = vec![ALPN.to_vec()];
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::PermissionsExt;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vde-quic-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn made_on_first_use_private_and_stable() {
        let d = tmpdir("make");
        let p = d.join("sub/quic.pem");
        let a = load_or_create(Some(&p)).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(p.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        let b = load_or_create(Some(&p)).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        let f = a.fingerprint().to_string();
        assert!(f.starts_with("SHA256:") && f.len() == 50, "{f}");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        // others may not read it; garbage is named
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(Some(&p)).err().unwrap();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::write(&p, "hello\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load_or_create(Some(&p)).err().unwrap();
        assert!(e.to_string().contains("not a certificate file"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn pins_files_take_fingerprints_and_certificates() {
        let d = tmpdir("pins");
        std::fs::create_dir_all(&d).unwrap();
        let a = load_or_create(Some(&d.join("a.pem"))).unwrap();
        let b = load_or_create(Some(&d.join("b.pem"))).unwrap();
        let cert_b = rustls::pki_types::pem::PemObject::pem_slice_iter(
            &std::fs::read(d.join("b.pem")).unwrap(),
        )
        .next()
        .map(|c: Result<CertificateDer<'static>, _>| c.unwrap())
        .unwrap();
        let mut text = format!("# site a\n{}  alice\n\n", a.fingerprint());
        text.push_str("-----BEGIN CERTIFICATE-----\n");
        text.push_str(&base64ish(&cert_b));
        text.push_str("-----END CERTIFICATE-----\n");
        let p = d.join("pins");
        std::fs::write(&p, &text).unwrap();
        let pins = read_pins(&p).unwrap();
        assert!(pins.contains(&a.fingerprint()), "{pins:?}");
        assert!(pins.contains(&b.fingerprint()), "{pins:?}");
        std::fs::write(&p, "SHA256:nope\n").unwrap();
        let e = read_pins(&p).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// PEM body lines of a DER blob.
    fn base64ish(der: &[u8]) -> String {
        const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for chunk in der.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    s.push(char::from(B64[(n >> (18 - 6 * i)) as usize & 63]));
                } else {
                    s.push('=');
                }
            }
        }
        let mut out = String::new();
        for line in s.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap());
            out.push('\n');
        }
        out
    }

    #[test]
    fn pins_parse_in_both_spellings() {
        let f = Fingerprint([0xab; 32]);
        assert_eq!(parse_pin(&f.to_string()), Some(f));
        let hex = vec!["AB"; 32].join(":");
        assert_eq!(parse_pin(&hex), Some(f));
        assert_eq!(parse_pin(&format!("sha256 Fingerprint={hex}")), Some(f));
        assert_eq!(parse_pin(&"ab".repeat(32)), Some(f));
        for bad in [
            "",
            "SHA256:short",
            &"ab".repeat(31),
            "zz",
            &f.to_string()[7..],
        ] {
            assert_eq!(parse_pin(bad), None, "{bad}");
        }
    }

    #[test]
    fn configs_build() {
        let d = tmpdir("cfg");
        let me = load_or_create(Some(&d.join("me.pem"))).unwrap();
        let pins = Pins::new(vec![me.fingerprint()]);
        assert!(client_config(&me, pins.clone()).is_ok());
        assert!(server_config(&me, pins.clone()).is_ok());
        assert_eq!(pins.len(), 1);
        pins.add(me.fingerprint());
        assert_eq!(pins.len(), 1, "added once");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
