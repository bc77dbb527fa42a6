//! The node's identity file: its long-term X25519 key, made on first use.
//!
//! The file holds one line, `vde-crypto/2 identity <64 hex digits>`, is
//! created with mode 0600 in a directory of mode 0700, and is refused when
//! anyone but its owner may read it (as ssh refuses a private key). Where
//! it lives: the `identity=` option or `--identity`, else `$VDE_IDENTITY`,
//! else `$XDG_CONFIG_HOME/vde/identity`, else `~/.config/vde/identity`.

use std::io;
use std::path::{Path, PathBuf};

use vde_crypto::Identity;
use zeroize::Zeroizing;

use crate::keyfile;

const HEADER: &str = "vde-crypto/2 identity ";

/// Where the identity lives when no path is given.
pub fn default_path() -> io::Result<PathBuf> {
    if let Some(p) = std::env::var_os("VDE_IDENTITY").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(x).join("vde/identity"));
    }
    match std::env::var_os("HOME").filter(|p| !p.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".config/vde/identity")),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no identity file: set HOME or VDE_IDENTITY, or give identity=FILE",
        )),
    }
}

/// Loads the identity at `path` (or the default one), making it first if
/// there is none. Says on stderr-level logs when it made one.
pub fn load_or_create(path: Option<&Path>) -> io::Result<Identity> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => default_path()?,
    };
    let ctx = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    match load(&path) {
        Ok(id) => return Ok(id),
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(ctx(e)),
        Err(_) => {}
    }
    let id = Identity::generate(&ring::rand::SystemRandom::new())
        .map_err(|e| io::Error::other(e.to_string()))?;
    match create(&path, &id) {
        Ok(()) => {
            tracing::info!(
                "made a new identity {} in {}",
                id.public().fingerprint(),
                path.display()
            );
            Ok(id)
        }
        // another process made it first: use theirs
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load(&path).map_err(ctx),
        Err(e) => Err(ctx(e)),
    }
}

/// Reads an identity file, refusing one others may read or that is not
/// ours.
pub fn load(path: &Path) -> io::Result<Identity> {
    let bytes = keyfile::read_private(path, 256)?;
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(parse)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not an identity file (want one line \"{HEADER}<64 hex digits>\")"),
            )
        })
}

fn parse(text: &str) -> Option<Identity> {
    let hex = text.trim_end_matches(['\n', '\r']).strip_prefix(HEADER)?;
    if hex.len() != 64 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut bytes = Zeroizing::new([0u8; 32]);
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Identity::from_bytes(*bytes))
}

/// Writes `id` to `path`, which must not exist (see
/// [`keyfile::create_private`]).
fn create(path: &Path, id: &Identity) -> io::Result<()> {
    let secret = id.secret_bytes();
    let mut line = Zeroizing::new(String::with_capacity(HEADER.len() + 65));
    line.push_str(HEADER);
    for b in secret.iter() {
        line.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        line.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    line.push('\n');
    keyfile::create_private(path, line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::PermissionsExt;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vde-id-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn made_on_first_use_private_and_stable() {
        let d = tmpdir("make");
        let p = d.join("sub/identity");
        let a = load_or_create(Some(&p)).unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(p.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        let b = load_or_create(Some(&p)).unwrap();
        assert_eq!(a.public(), b.public(), "the same identity next time");
        // no temp file left behind
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn readable_by_others_or_garbage_is_refused() {
        let d = tmpdir("refuse");
        let p = d.join("identity");
        load_or_create(Some(&p)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = load_or_create(Some(&p)).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::write(&p, "not a key\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load_or_create(Some(&p)).unwrap_err();
        assert!(e.to_string().contains("not an identity file"), "{e}");
        // a symlink is not followed
        let q = d.join("link");
        std::os::unix::fs::symlink(&p, &q).unwrap();
        assert!(load(&q).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn concurrent_first_use_agrees() {
        let d = tmpdir("race");
        let p = d.join("identity");
        let ids: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || load_or_create(Some(&p)).unwrap().public())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "one identity for all");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
