//! User and group names from /etc/passwd and /etc/group (no NSS: enough
//! for the local accounts a switch's ports are given to).

use std::fs;

fn lookup(file: &str, want: impl Fn(&[&str]) -> bool, field: usize) -> Option<String> {
    let text = fs::read_to_string(file).ok()?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && want(f))
        .and_then(|f| f.get(field).map(|s| s.to_string()))
}

/// Name of a uid, if it has a passwd entry.
pub fn user_name(uid: u32) -> Option<String> {
    lookup("/etc/passwd", |f| f[2].parse() == Ok(uid), 0)
}

/// Uid of a user name.
pub fn uid_of(name: &str) -> Option<u32> {
    lookup("/etc/passwd", |f| f[0] == name, 2)?.parse().ok()
}

/// Name of a gid, if it has a group entry.
pub fn group_name(gid: u32) -> Option<String> {
    lookup("/etc/group", |f| f[2].parse() == Ok(gid), 0)
}

/// Gid of a group name.
pub fn gid_of(name: &str) -> Option<u32> {
    lookup("/etc/group", |f| f[0] == name, 2)?.parse().ok()
}

/// The groups of a user: `primary`, then every group of /etc/group that
/// lists the user's name as a member.
pub fn groups_of(uid: u32, primary: u32) -> Vec<u32> {
    let mut gids = vec![primary];
    let Some(name) = user_name(uid) else {
        return gids;
    };
    if let Ok(text) = fs::read_to_string("/etc/group") {
        for f in text.lines().map(|l| l.split(':').collect::<Vec<_>>()) {
            if f.len() > 3 && f[3].split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse() {
                    if !gids.contains(&g) {
                        gids.push(g);
                    }
                }
            }
        }
    }
    gids
}

/// A user given as a name or a number (`NONE`/`ANY` handled by the caller).
pub fn parse_user(s: &str) -> Option<u32> {
    s.parse().ok().or_else(|| uid_of(s))
}

/// A group given as a name or a number.
pub fn parse_group(s: &str) -> Option<u32> {
    s.parse().ok().or_else(|| gid_of(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_both_ways() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(uid_of("root"), Some(0));
        assert_eq!(gid_of("root"), Some(0));
        assert_eq!(group_name(0).as_deref(), Some("root"));
        assert_eq!(parse_user("17"), Some(17));
        assert_eq!(parse_user("no-such-user-here"), None);
        assert_eq!(parse_group("no-such-group-here"), None);
    }
}
