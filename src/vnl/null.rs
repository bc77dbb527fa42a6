//! `null://`: sends go nowhere, nothing is ever received.

use std::io;
use std::sync::{Condvar, Mutex};

use super::{Locator, OpenArgs, OpenError, Plug};

#[derive(Default)]
pub struct NullPlug {
    never: (Mutex<()>, Condvar),
}

impl Plug for NullPlug {
    fn send(&self, _frame: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn recv(&self, _buf: &mut [u8]) -> io::Result<usize> {
        let (lock, cv) = &self.never;
        let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

pub fn open(_loc: &Locator, _args: &OpenArgs) -> Result<Box<dyn Plug>, OpenError> {
    Ok(Box::new(NullPlug::default()))
}
