//! Debug categories (`debug/list`, `debug/add`, `debug/del`) and the async
//! `3TTT category text` lines sent to subscribed sessions.

/// (path, tag in octal as printed, help), in the C switch's order. The
/// index of a category is its bit in a session's debug mask and the
/// `category` of [`crate::core::Event::Debug`].
pub const CATEGORIES: &[(&str, &str, &str)] = &[
    ("hash/+", "011", "hash: new element"),
    ("hash/-", "012", "hash: discarded element"),
    ("fstp/status", "044", "fstp: status change"),
    ("fstp/root", "045", "fstp: rootswitch/port change"),
    ("fstp/+", "041", "fstp: port becomes active"),
    ("fstp/-", "042", "fstp: port becomes inactive"),
    ("port/+", "021", "new port"),
    ("port/-", "022", "closed port"),
    ("port/descr", "023", "set port description"),
    ("port/ep/+", "031", "new endpoint"),
    ("port/ep/-", "032", "closed endpoint"),
];

/// Bits of every category whose path starts with `prefix`.
pub fn matching(prefix: &str) -> u64 {
    CATEGORIES
        .iter()
        .enumerate()
        .filter(|(_, (p, _, _))| p.starts_with(prefix))
        .fold(0, |m, (i, _)| m | 1 << i)
}

/// The async line for an event, newline included.
pub fn line(category: usize, text: &str) -> String {
    let (path, tag, _) = CATEGORIES[category];
    format!("3{tag} {path} {text}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_lines() {
        assert_eq!(matching("port"), 0b111_1100_0000);
        assert_eq!(matching("port/ep"), 0b110_0000_0000);
        assert_eq!(matching("hash/+"), 1);
        assert_eq!(matching("nope"), 0);
        assert_eq!(line(6, "09"), "3021 port/+ 09\n");
        assert_eq!(
            line(0, "02:00:00:00:00:09 VLAN 00:00 Port 9"),
            "3011 hash/+ 02:00:00:00:00:09 VLAN 00:00 Port 9\n"
        );
    }
}
