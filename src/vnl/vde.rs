//! `vde://PATH[OPTIONS]` (and a bare path): a client of a vde_switch
//! control directory, speaking the control protocol as libvdeplug4 does
//! (protocol spec §1.2, §1.7).

use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::parse::{path_style, VnlError};
use super::{Locator, OpenArgs, OpenError, Plug};
use crate::core::PortRequest;
use crate::ctl::{parse_reply, Request, MAX_CLIENT_DESCR, SOCKADDR_LEN};
use crate::{sys, users};

/// Option keys, in libvdeplug's order (decides abbreviations).
pub const KEYS: &[&str] = &["", "port", "portgroup", "group", "mode"];

/// How long to wait for the switch's reply (Debian's switch never answers
/// a refused request; upstream closes the stream).
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// An attached vde_switch endpoint.
pub struct VdePlug {
    data: UnixDatagram,
    ctl: UnixStream,
}

impl Plug for VdePlug {
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.data.send(frame).map(|_| ())
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.data.recv(buf)
    }

    fn datagram_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        Some(self.data.as_raw_fd())
    }

    /// Leaves the switch at once: the control stream is shut down, so the
    /// switch drops the port, and a receive blocked in another thread ends.
    fn close(&self) {
        let _ = self.ctl.shutdown(std::net::Shutdown::Both);
        let _ = self.data.shutdown(std::net::Shutdown::Both);
    }

    fn wait_hangup(&self) -> bool {
        let mut ctl = match self.ctl.try_clone() {
            Ok(c) => c,
            Err(_) => return false,
        };
        let _ = ctl.set_read_timeout(None);
        let mut b = [0u8; 64];
        loop {
            match ctl.read(&mut b) {
                Ok(0) | Err(_) => return true,
                Ok(_) => continue,
            }
        }
    }
}

/// The description sent to the switch: the caller's text, then
/// ` user=<name> pid=<pid>` (and ` SSH=<client>` under ssh), at most 127
/// bytes, as Debian's libvdeplug4 builds it.
pub fn description(descr: &str) -> String {
    let uid = sys::euid();
    let user = users::user_name(uid).unwrap_or_else(|| uid.to_string());
    let mut d = format!("{descr} user={user} pid={}", std::process::id());
    if let Ok(ssh) = std::env::var("SSH_CLIENT") {
        if let Some(first) = ssh.split_whitespace().next() {
            d.push_str(&format!(" SSH={first}"));
        }
    }
    let mut n = d.len().min(MAX_CLIENT_DESCR);
    while !d.is_char_boundary(n) {
        n -= 1;
    }
    d.truncate(n);
    d
}

pub fn open(loc: &Locator, args: &OpenArgs) -> Result<Box<dyn Plug>, OpenError> {
    let (path, opts) = path_style(&loc.rest, KEYS, "vde", &loc.text)?;
    let bad = |key: &str, value: &str, why: &str| VnlError::BadValue {
        key: key.into(),
        value: value.into(),
        vnl: loc.text.clone(),
        why: why.into(),
    };
    let port_text = opts
        .value("")
        .or(opts.value("port"))
        .or(opts.value("portgroup"))
        .map(str::to_string)
        .or_else(|| {
            args.port.map(|p| {
                if p < 0 {
                    "0".to_string()
                } else {
                    p.to_string()
                }
            })
        });
    let mode = match opts.value("mode") {
        Some(m) => u32::from_str_radix(m, 8).map_err(|_| bad("mode", m, "not an octal mode"))?,
        None => args.mode.unwrap_or(0o700),
    };
    let group = match opts
        .value("group")
        .map(str::to_string)
        .or_else(|| args.group.clone())
    {
        Some(g) => Some(users::parse_group(&g).ok_or_else(|| bad("group", &g, "no such group"))?),
        None => None,
    };
    let dirs: Vec<PathBuf> = if path.is_empty() {
        vec![
            PathBuf::from("/var/run/vde.ctl"),
            PathBuf::from("/tmp/vde.ctl"),
        ]
    } else {
        vec![PathBuf::from(&path)]
    };
    let (req, portgroup) = match port_text.as_deref() {
        None => (PortRequest::Any, None),
        Some(p) if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) => {
            let n: u32 = p.parse().map_err(|_| bad("port", p, "out of range"))?;
            (
                if n == 0 {
                    PortRequest::Port0
                } else {
                    PortRequest::Port(n)
                },
                Some(p.to_string()),
            )
        }
        Some(p) => (PortRequest::Any, Some(p.to_string())),
    };
    let mut last = None;
    for dir in &dirs {
        match connect(dir, portgroup.as_deref()) {
            Ok(ctl) => return attach(dir, ctl, req, mode, group, &description(&args.descr)),
            Err(e) => last = Some(e),
        }
    }
    Err(OpenError::io(
        format!(
            "cannot reach switch {}",
            dirs.last()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        ),
        last.unwrap_or_else(|| io::ErrorKind::NotFound.into()),
    ))
}

/// Connects to `<dir>/<portgroup>` if there is one, else `<dir>/ctl`.
fn connect(dir: &Path, portgroup: Option<&str>) -> io::Result<UnixStream> {
    if let Some(pg) = portgroup {
        if let Ok(s) = UnixStream::connect(dir.join(pg)) {
            return Ok(s);
        }
    }
    UnixStream::connect(dir.join("ctl"))
}

/// Binds the client's data socket `<dir>/.PPPPP-SSSSS` (or in a fallback
/// directory), as libvdeplug names it.
fn bind_data(dir: &Path) -> io::Result<(UnixDatagram, PathBuf)> {
    let pid = std::process::id();
    let mut last = io::Error::from(io::ErrorKind::AddrInUse);
    for seq in 0..100_000u32 {
        let p = dir.join(format!(".{pid:05}-{seq:05}"));
        match UnixDatagram::bind(&p) {
            Ok(s) => return Ok((s, p)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) => {
                last = e;
                break;
            }
        }
    }
    for base in ["/var/run/vde", "/var/tmp/vde", "/tmp/vde"] {
        for seq in 0..1000u32 {
            let p = PathBuf::from(format!("{base}.{pid:05}-{seq:05}"));
            match UnixDatagram::bind(&p) {
                Ok(s) => return Ok((s, p)),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                Err(e) => {
                    last = e;
                    break;
                }
            }
        }
    }
    Err(last)
}

fn attach(
    dir: &Path,
    mut ctl: UnixStream,
    req: PortRequest,
    mode: u32,
    group: Option<u32>,
    descr: &str,
) -> Result<Box<dyn Plug>, OpenError> {
    let what = |s: &str| format!("{s} ({})", dir.display());
    let (data, path) =
        bind_data(dir).map_err(|e| OpenError::io(what("cannot bind a data socket"), e))?;
    let cleanup = |e: OpenError| {
        let _ = std::fs::remove_file(&path);
        e
    };
    if let Some(g) = group {
        let _ = std::os::unix::fs::chown(&path, None, Some(g));
    }
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode));
    let request = Request::emit_v3(req, path.as_os_str().as_bytes(), descr);
    ctl.write_all(&request)
        .map_err(|e| cleanup(OpenError::io(what("cannot send the request"), e)))?;
    ctl.set_read_timeout(Some(REPLY_TIMEOUT))
        .map_err(|e| cleanup(OpenError::io(what("control socket"), e)))?;
    let mut reply = [0u8; SOCKADDR_LEN];
    let mut got = 0;
    while got < reply.len() {
        match ctl.read(&mut reply[got..]) {
            Ok(0) => return Err(cleanup(OpenError::io(
                what(
                    "the switch refused the request (port in use, out of range, or not permitted)",
                ),
                io::ErrorKind::ConnectionRefused.into(),
            ))),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(cleanup(OpenError::io(what("no reply from the switch"), e))),
        }
    }
    let remote = parse_reply(&reply).ok_or_else(|| {
        cleanup(OpenError::io(
            what("bad reply from the switch"),
            io::ErrorKind::InvalidData.into(),
        ))
    })?;
    let remote = PathBuf::from(std::ffi::OsStr::from_bytes(&remote));
    data.connect(&remote).map_err(|e| {
        cleanup(OpenError::io(
            what("cannot connect to the switch's data socket"),
            e,
        ))
    })?;
    let _ = std::fs::set_permissions(&remote, std::fs::Permissions::from_mode(mode));
    let _ = std::fs::remove_file(&path);
    Ok(Box::new(VdePlug { data, ctl }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_format() {
        let d = description("vdeplug:");
        assert!(d.starts_with("vdeplug: user="), "{d}");
        assert!(d.contains(&format!(" pid={}", std::process::id())));
        assert!(description(&"x".repeat(300)).len() <= MAX_CLIENT_DESCR);
    }

    #[test]
    fn missing_switch_is_a_clear_error() {
        let e = super::super::open("/nonexistent/switch", &OpenArgs::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/switch"), "{e}");
        let e = super::super::open("/tmp/x[mode=99z]", &OpenArgs::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("mode"), "{e}");
    }
}
