//! Private key files (a cable identity, a QUIC certificate and its key):
//! read only when they are this user's regular file that nobody else may
//! read, and made with mode 0600 in a 0700 directory, through a temp file
//! linked into place, so that a reader never sees half a file and two
//! processes making one at once keep one.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use zeroize::Zeroizing;

use crate::sys;

/// Reads at most `limit` bytes of the private file at `path` (not
/// following a symlink) into a buffer wiped when dropped; refuses a file
/// that is not a regular file of this user, or that others may read.
pub fn read_private(path: &Path, limit: usize) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let m = f.metadata()?;
    if !m.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    if m.uid() != sys::euid() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("owned by uid {}, not by this user", m.uid()),
        ));
    }
    if m.mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "mode {:04o}: others may read this private key (chmod 600 it)",
                m.mode() & 0o7777
            ),
        ));
    }
    // room for the whole bounded read: no reallocation leaves a copy
    let mut bytes = Zeroizing::new(Vec::with_capacity(limit + 1));
    (&mut f).take(limit as u64).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Writes `contents` to `path`, which must not exist (`AlreadyExists`
/// when another process made it first), with mode 0600, making its
/// directory with mode 0700 if needed.
pub fn create_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut salt = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| io::Error::other("no randomness from the system"))?;
    let mut name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
        .to_os_string();
    name.push(format!(".tmp{:016x}", u64::from_le_bytes(salt)));
    let tmp = path.with_file_name(name);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    let written = f.write_all(contents).and_then(|()| f.sync_all());
    drop(f);
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    linked
}
