//! Creating the control directory and the listening sockets with the C
//! switch's permissions, and removing them again.

use std::fs;
use std::io;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// Longest control-directory path: `dir + "/NNN.F"` must fit in sun_path.
pub const MAX_CTL_DIR: usize = 100;

/// Failure to set up a switch's sockets, naming the path at fault.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("control directory {0:?} is longer than {MAX_CTL_DIR} bytes")]
    PathTooLong(PathBuf),
    #[error("cannot create control directory {path:?}: {err}")]
    Dir { path: PathBuf, err: io::Error },
    #[error("Could not bind to socket '{path}': another switch is running there")]
    InUse { path: String },
    #[error("cannot bind socket {path:?}: {err}")]
    Bind { path: PathBuf, err: io::Error },
    #[error("cannot attach tap interface {name:?}: {err}")]
    Tap { name: String, err: io::Error },
    #[error("cannot set permissions of {path:?}: {err}")]
    Perm { path: PathBuf, err: io::Error },
    #[error("cannot open cable {vnl}: {why}")]
    Cable { vnl: String, why: String },
}

/// Modes derived as the C switch derives them from -m/--dirmode (protocol
/// spec §1.1). Returns (socket mode, dir mode).
pub fn derive_modes(mode: Option<u32>, dirmode: Option<u32>) -> (u32, u32) {
    match (mode, dirmode) {
        (None, None) => (0o600, 0o2700),
        (Some(m), None) => {
            let mut d = 0o2000;
            for shift in [6, 3, 0] {
                let class = (m >> shift) & 7;
                if class != 0 {
                    d |= (class | 1) << shift;
                }
            }
            (m, d)
        }
        (None, Some(d)) => (d & 0o666, d),
        (Some(m), Some(d)) => (m, d),
    }
}

/// What a switch's start put on the filesystem: the control directory if
/// it created it, and the sockets it bound. Dropped, it removes them (a
/// start refused half way leaves nothing behind, and nothing that was
/// there before is touched); [`Made::keep`] disarms it once the switch
/// runs and cleans up itself.
#[derive(Debug, Default)]
pub struct Made {
    dir: Option<PathBuf>,
    sockets: Vec<PathBuf>,
}

impl Made {
    /// Forget everything: nothing is removed on drop.
    pub fn keep(&mut self) {
        self.dir = None;
        self.sockets.clear();
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        for s in self.sockets.drain(..).rev() {
            let _ = fs::remove_file(s);
        }
        if let Some(d) = self.dir.take() {
            // only if empty: whatever else came to live there stays
            let _ = fs::remove_dir(d);
        }
    }
}

/// Creates (or reuses) the control directory and sets its group and mode.
/// Returns its canonical path; a directory it created is noted in `made`.
pub fn make_ctl_dir(
    dir: &Path,
    dirmode: u32,
    group: Option<u32>,
    made: &mut Made,
) -> Result<PathBuf, SetupError> {
    let derr = |err| SetupError::Dir {
        path: dir.to_path_buf(),
        err,
    };
    let created = match fs::create_dir(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(derr(e)),
    };
    if created {
        made.dir = Some(dir.to_path_buf());
    }
    let canon = fs::canonicalize(dir).map_err(derr)?;
    if created {
        made.dir = Some(canon.clone());
    }
    if canon.as_os_str().len() > MAX_CTL_DIR {
        return Err(SetupError::PathTooLong(canon));
    }
    if group.is_some() {
        chown(&canon, None, group).map_err(derr)?;
    }
    fs::set_permissions(&canon, fs::Permissions::from_mode(dirmode)).map_err(derr)?;
    Ok(canon)
}

/// Makes sure nothing live listens at `path`: a live socket is an error,
/// a stale one is removed (as the C switch does on startup).
pub fn clear_stale(path: &Path) -> Result<(), SetupError> {
    if fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(SetupError::InUse {
            path: path.display().to_string(),
        }),
        Err(_) => {
            let _ = fs::remove_file(path);
            Ok(())
        }
    }
}

/// Binds a listening unix stream socket with the given mode and group,
/// noted in `made`.
pub fn listen(
    path: &Path,
    mode: u32,
    group: Option<u32>,
    made: &mut Made,
) -> Result<mio::net::UnixListener, SetupError> {
    clear_stale(path)?;
    let l = mio::net::UnixListener::bind(path).map_err(|err| SetupError::Bind {
        path: path.to_path_buf(),
        err,
    })?;
    made.sockets.push(path.to_path_buf());
    set_mode(path, mode, None, group)?;
    Ok(l)
}

/// chmod + chown(uid, group) of a socket file.
pub fn set_mode(
    path: &Path,
    mode: u32,
    uid: Option<u32>,
    group: Option<u32>,
) -> Result<(), SetupError> {
    let perr = |err| SetupError::Perm {
        path: path.to_path_buf(),
        err,
    };
    if uid.is_some() || group.is_some() {
        chown(path, uid, group).map_err(perr)?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(perr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_follow_the_c_switch() {
        assert_eq!(derive_modes(None, None), (0o600, 0o2700));
        assert_eq!(derive_modes(Some(0o660), None), (0o660, 0o2770));
        assert_eq!(derive_modes(Some(0o666), None), (0o666, 0o2777));
        assert_eq!(derive_modes(Some(0o640), None), (0o640, 0o2750));
        assert_eq!(derive_modes(None, Some(0o750)), (0o640, 0o750));
    }

    #[test]
    fn stale_sockets_are_replaced_live_ones_refused() {
        let dir = std::env::temp_dir().join(format!("vde-setup-{}", std::process::id()));
        let mut made = Made::default();
        let canon = make_ctl_dir(&dir, 0o2700, None, &mut made).unwrap();
        made.keep();
        let meta = fs::metadata(&canon).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o2700);
        let sock = canon.join("ctl");
        let l = listen(&sock, 0o600, None, &mut made).unwrap();
        made.keep();
        assert_eq!(
            fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(matches!(
            listen(&sock, 0o600, None, &mut made),
            Err(SetupError::InUse { .. })
        ));
        drop(l);
        // the file is still there but nobody listens: replaced
        assert!(sock.exists());
        let _l2 = listen(&sock, 0o600, None, &mut made).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        let long = PathBuf::from(format!("/tmp/{}", "x".repeat(120)));
        assert!(matches!(
            make_ctl_dir(&long, 0o2700, None, &mut made),
            Err(SetupError::Dir { .. } | SetupError::PathTooLong(_))
        ));
    }

    #[test]
    fn made_removes_only_what_was_made() {
        let base = std::env::temp_dir().join(format!("vde-made-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir(&base).unwrap();
        // a new directory and its socket: both removed on drop
        let new = base.join("new");
        {
            let mut made = Made::default();
            let canon = make_ctl_dir(&new, 0o2700, None, &mut made).unwrap();
            let _l = listen(&canon.join("ctl"), 0o600, None, &mut made).unwrap();
        }
        assert!(!new.exists());
        // an existing directory: only the socket goes
        let old = base.join("old");
        fs::create_dir(&old).unwrap();
        {
            let mut made = Made::default();
            let canon = make_ctl_dir(&old, 0o2700, None, &mut made).unwrap();
            let _l = listen(&canon.join("ctl"), 0o600, None, &mut made).unwrap();
        }
        assert!(old.exists() && !old.join("ctl").exists());
        // kept: nothing removed
        {
            let mut made = Made::default();
            let canon = make_ctl_dir(&new, 0o2700, None, &mut made).unwrap();
            let _l = listen(&canon.join("ctl"), 0o600, None, &mut made).unwrap();
            made.keep();
        }
        assert!(new.join("ctl").exists());
        fs::remove_dir_all(&base).unwrap();
    }
}
