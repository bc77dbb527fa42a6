//! The `showinfo`, `showedges` and `showcurrent` texts, byte for byte as the
//! C tool prints them (protocols §5.6). Each line ends with `\n`; the
//! management layer adds the `0000 DATA END WITH '.'` framing, and the two
//! `Blink` lines after `showinfo` when `--blink` is on.

use std::fmt::Write as _;

use super::channel::{Channel, ChannelError};
use super::value::G;
use super::{Dir, Mode, Param};

/// The value rows of `showinfo`, label padded to 6.
const ROWS: [(&str, Param); 7] = [
    ("Loss  ", Param::Loss),
    ("Lburst", Param::LostBurst),
    ("Delay ", Param::Delay),
    ("Dup   ", Param::Dup),
    ("Bandw ", Param::Bandwidth),
    ("Speed ", Param::Speed),
    ("Noise ", Param::Noise),
];

impl Channel {
    fn shown_node(&self, node: Option<usize>) -> Result<usize, ChannelError> {
        let node = node.unwrap_or(self.current_node());
        match self.node_name(node) {
            Some(_) => Ok(node),
            None => Err(ChannelError::NoSuchNode {
                node,
                count: self.numnodes(),
            }),
        }
    }

    /// `showinfo [node]`: the parameters of `node` (default: the current
    /// one), the queue state and the FIFO flag.
    pub fn showinfo(&self, node: Option<usize>) -> Result<String, ChannelError> {
        let node = self.shown_node(node)?;
        let v = |p: Param, d: Dir| self.value(node, p, d).unwrap_or_default();
        let mut s = String::new();
        let bi = self.mode() == Mode::Bidirectional;
        // Writing to a String cannot fail.
        let _ = writeln!(
            s,
            "WireFilter: {}directional",
            if bi { "bi" } else { "mono" }
        );
        if self.numnodes() > 1 {
            let _ = writeln!(
                s,
                "Node {} \"{}\" (0,..,{}) Markov-time {}",
                node,
                self.node_name(node).unwrap_or(""),
                self.numnodes() - 1,
                G(self.markov_time())
            );
        }
        let cap = Param::ChanBufSize;
        if bi {
            for (label, p) in ROWS {
                let _ = writeln!(s, "{label} L->R {}   R->L {}", v(p, Dir::LR), v(p, Dir::RL));
            }
            let _ = writeln!(
                s,
                "MTU    L->R {}     R->L {}   ",
                G(v(Param::Mtu, Dir::LR).min()),
                G(v(Param::Mtu, Dir::RL).min())
            );
            let _ = writeln!(
                s,
                "Cap.   L->R {}   R->L {}",
                v(cap, Dir::LR),
                v(cap, Dir::RL)
            );
            let _ = writeln!(
                s,
                "Current Delay Queue size:   L->R {}      R->L {}   ",
                self.queued_bytes(Dir::LR),
                self.queued_bytes(Dir::RL)
            );
        } else {
            for (label, p) in ROWS {
                let _ = writeln!(s, "{label} {}", v(p, Dir::LR));
            }
            let _ = writeln!(s, "MTU    {}", G(v(Param::Mtu, Dir::LR).min()));
            let _ = writeln!(s, "Cap.   {}", v(cap, Dir::LR));
            let _ = writeln!(
                s,
                "Current Delay Queue size:   {}",
                self.queued_bytes(Dir::LR)
            );
        }
        let _ = writeln!(s, "Fifoness {}", if self.fifo() { "TRUE" } else { "FALSE" });
        let _ = writeln!(
            s,
            "Waiting packets in delay queues {}",
            self.queued_frames()
        );
        Ok(s)
    }

    /// `showedges [node]`: the non-zero edges out of `node` (default: the
    /// current one), with Debian's "weigth" spelling.
    pub fn showedges(&self, node: Option<usize>) -> Result<String, ChannelError> {
        let node = self.shown_node(node)?;
        let from_name = self.node_name(node).unwrap_or("");
        let mut s = String::new();
        for to in 0..self.numnodes() {
            let w = self.weights().weight(node, to).unwrap_or(0.0);
            if w != 0.0 {
                let _ = writeln!(
                    s,
                    "Edge {node:<2}->{to:<2} \"{from_name}\"->\"{}\" weigth {}",
                    self.node_name(to).unwrap_or(""),
                    G(w)
                );
            }
        }
        Ok(s)
    }

    /// `showcurrent`: `Current Markov Node 0 "" (0,..,2)`.
    pub fn showcurrent(&self) -> String {
        let node = self.current_node();
        format!(
            "Current Markov Node {} \"{}\" (0,..,{})\n",
            node,
            self.node_name(node).unwrap_or(""),
            self.numnodes() - 1
        )
    }
}
