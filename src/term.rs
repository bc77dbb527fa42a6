//! vdeterm: a terminal for VDE management sockets.
