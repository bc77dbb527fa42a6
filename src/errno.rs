//! The Linux errno values the management console reports, with glibc's
//! texts, so that `1NNN text` lines match the C switch byte for byte.

/// An errno value as the C switch returns it from a management command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

pub const ENOENT: Errno = Errno(2);
pub const ENXIO: Errno = Errno(6);
pub const EBADF: Errno = Errno(9);
pub const ENOMEM: Errno = Errno(12);
pub const EPERM: Errno = Errno(1);
pub const EEXIST: Errno = Errno(17);
pub const ENODEV: Errno = Errno(19);
pub const EINVAL: Errno = Errno(22);
pub const ENOSPC: Errno = Errno(28);
pub const ENOSYS: Errno = Errno(38);
pub const EADDRINUSE: Errno = Errno(98);
pub const EACCES: Errno = Errno(13);
pub const EIO: Errno = Errno(5);
pub const ECONNREFUSED: Errno = Errno(111);
pub const EHOSTUNREACH: Errno = Errno(113);

impl Errno {
    /// glibc's `strerror` text.
    pub fn text(self) -> &'static str {
        match self.0 {
            1 => "Operation not permitted",
            2 => "No such file or directory",
            5 => "Input/output error",
            6 => "No such device or address",
            9 => "Bad file descriptor",
            12 => "Cannot allocate memory",
            13 => "Permission denied",
            17 => "File exists",
            19 => "No such device",
            22 => "Invalid argument",
            28 => "No space left on device",
            38 => "Function not implemented",
            98 => "Address already in use",
            111 => "Connection refused",
            113 => "No route to host",
            _ => "Unknown error",
        }
    }
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

impl std::error::Error for Errno {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_match_the_system() {
        for e in [
            EPERM,
            ENOENT,
            ENXIO,
            EBADF,
            ENOMEM,
            EACCES,
            EEXIST,
            ENODEV,
            EINVAL,
            ENOSPC,
            ENOSYS,
            EADDRINUSE,
            EIO,
            ECONNREFUSED,
            EHOSTUNREACH,
        ] {
            let sys = std::io::Error::from_raw_os_error(e.0).to_string();
            assert!(sys.starts_with(e.text()), "{} vs {sys}", e.text());
        }
    }
}
