//! Least privilege in live mode: the capture handle is opened with the
//! privileges deguchi was started with (root, or CAP_NET_RAW), then the
//! process drops to an unprivileged user and group for good: supplementary
//! groups cleared, gid then uid set (real, effective and saved), verified.
//! Outputs are opened before the drop; the state directory and SIGHUP
//! reopening need write access for that user.

use nix::unistd::{Gid, Group, Uid, User, getegid, geteuid, setgid, setgroups, setuid};

/// Drops to `user` (and `group`, default the user's primary group).
///
/// # Errors
/// Unknown user or group, or a system call refused: the caller must stop,
/// never run on as root.
pub fn drop_to(user: &str, group: Option<&str>) -> Result<(Uid, Gid), String> {
    let u = User::from_name(user)
        .map_err(|e| format!("--user {user}: {e}"))?
        .ok_or_else(|| format!("--user {user}: no such user"))?;
    let gid = match group {
        Some(g) => {
            Group::from_name(g)
                .map_err(|e| format!("--group {g}: {e}"))?
                .ok_or_else(|| format!("--group {g}: no such group"))?
                .gid
        }
        None => u.gid,
    };
    setgroups(&[gid]).map_err(|e| format!("setgroups: {e}"))?;
    setgid(gid).map_err(|e| format!("setgid({gid}): {e}"))?;
    setuid(u.uid).map_err(|e| format!("setuid({}): {e}", u.uid))?;
    if geteuid() != u.uid
        || getegid() != gid
        || (!u.uid.is_root() && setuid(Uid::from_raw(0)).is_ok())
    {
        return Err("privileges were not dropped".into());
    }
    Ok((u.uid, gid))
}
