//! `cmd://COMMAND ARGS...`: a coprocess whose stdin and stdout carry the
//! stream framing (protocol spec §2, §4.4), e.g.
//! `cmd://"ssh host vde_plug vxvde://"`.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use super::parse::VnlError;
use super::{Locator, OpenArgs, OpenError, Plug};
use crate::stream::{self, Decoder, Item};

/// Largest frame cmd:// carries (VDE_ETHBUFSIZE).
const MAX: usize = crate::frame::MAX_JUMBO;

pub struct CmdPlug {
    text: String,
    child: Mutex<Child>,
    stdin: Mutex<(ChildStdin, Vec<u8>)>,
    stdout: Mutex<Reader>,
}

struct Reader {
    out: ChildStdout,
    dec: Decoder,
    ready: VecDeque<Vec<u8>>,
    done: bool,
}

impl Plug for CmdPlug {
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        let mut g = self.stdin.lock().unwrap_or_else(|e| e.into_inner());
        let (pipe, rec) = &mut *g;
        if stream::encode(frame, rec).is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame too long for cmd://",
            ));
        }
        pipe.write_all(rec)
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut r = self.stdout.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(f) = r.ready.pop_front() {
                let n = f.len().min(buf.len());
                buf[..n].copy_from_slice(&f[..n]);
                return Ok(n);
            }
            if r.done {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let mut chunk = [0u8; 16384];
            let n = match r.out.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            if n == 0 {
                r.done = true;
                let _ = self.child.lock().map(|mut c| c.wait());
                eprintln!("VDE terminated: {}", self.text);
                continue;
            }
            let Reader { dec, ready, .. } = &mut *r;
            dec.push(&chunk[..n], |item| match item {
                Item::Frame(f) => ready.push_back(f.to_vec()),
                Item::LengthError { len } => {
                    tracing::warn!("cmd:// stream: record length {len} over {MAX}, read dropped")
                }
            });
        }
    }
}

impl Drop for CmdPlug {
    fn drop(&mut self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Splits a command line into words: blanks separate, `'…'` and `"…"`
/// quote, `\` escapes (libexecs' rules, no shell).
pub fn split_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                cur.push(chars.next()?);
                has = true;
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                has = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if has {
                    words.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            (_, c) => {
                cur.push(c);
                has = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if has {
        words.push(cur);
    }
    Some(words)
}

pub fn open(loc: &Locator, _args: &OpenArgs) -> Result<Box<dyn Plug>, OpenError> {
    let words = split_words(&loc.rest)
        .filter(|w| !w.is_empty())
        .ok_or_else(|| VnlError::BadValue {
            key: "command".into(),
            value: loc.rest.clone(),
            vnl: loc.text.clone(),
            why: "empty command or unterminated quote".into(),
        })?;
    let mut child = Command::new(&words[0])
        .args(&words[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| OpenError::io(format!("cannot run {:?}", words[0]), e))?;
    let stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    Ok(Box::new(CmdPlug {
        text: loc.text.clone(),
        child: Mutex::new(child),
        stdin: Mutex::new((stdin, Vec::with_capacity(MAX + 2))),
        stdout: Mutex::new(Reader {
            out: stdout,
            dec: Decoder::new(MAX),
            ready: VecDeque::new(),
            done: false,
        }),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(
            split_words("ssh host vde_plug vxvde://").unwrap(),
            vec!["ssh", "host", "vde_plug", "vxvde://"]
        );
        assert_eq!(
            split_words(r#"a 'b c' "d\"e" f\ g ''"#).unwrap(),
            vec!["a", "b c", "d\"e", "f g", ""]
        );
        assert!(split_words("'open").is_none());
        assert_eq!(split_words("  ").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn cat_echoes_frames_back_then_ends() {
        let p = super::super::open("cmd://cat", &OpenArgs::default()).unwrap();
        for n in [14usize, 1500, 9234] {
            p.send(&vec![n as u8; n]).unwrap();
            let mut buf = vec![0u8; 10000];
            assert_eq!(p.recv(&mut buf).unwrap(), n);
            assert_eq!(buf[0], n as u8);
        }
        let p = super::super::open("cmd://true", &OpenArgs::default()).unwrap();
        let mut buf = [0u8; 100];
        assert_eq!(
            p.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert!(super::super::open("cmd://", &OpenArgs::default()).is_err());
        assert!(super::super::open("cmd://no-such-program-xyz", &OpenArgs::default()).is_err());
    }
}
