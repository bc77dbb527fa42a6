//! `switch://[PATH][OPTIONS]`: this process becomes a learning switch that
//! others join with `vde://PATH` (see [`super::node`]).

use super::{Locator, OpenArgs, OpenError, Plug};

pub fn open(loc: &Locator, args: &OpenArgs) -> Result<Box<dyn Plug>, OpenError> {
    super::node::open(loc, args, false)
}
