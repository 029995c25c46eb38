//! Least privilege in live mode: the capture handle is opened with the
//! privileges deguchi was started with (root, or CAP_NET_RAW), then the
//! process drops to an unprivileged user and group for good: supplementary
//! groups cleared, gid then uid set (real, effective and saved), verified.
//! Outputs are opened before the drop; the state directory and SIGHUP
//! reopening need write access for that user.

use nix::unistd::{Gid, Group, Uid, User, getegid, geteuid, setgid, setgroups, setuid};

/// Why privileges could not be dropped.
#[derive(Debug, thiserror::Error)]
pub enum PrivDropError {
    #[error("--user {0}: no such user")]
    NoUser(String),
    #[error("--group {0}: no such group")]
    NoGroup(String),
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: nix::Error,
    },
    #[error("privileges were not dropped")]
    StillPrivileged,
}

fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> PrivDropError {
    let what = what.into();
    move |source| PrivDropError::Sys { what, source }
}

/// Drops to `user` (and `group`, default the user's primary group).
///
/// # Errors
/// Unknown user or group, or a system call refused: the caller must stop,
/// never run on as root.
pub fn drop_to(user: &str, group: Option<&str>) -> Result<(Uid, Gid), PrivDropError> {
    let u = User::from_name(user)
        .map_err(sys(format!("--user {user}")))?
        .ok_or_else(|| PrivDropError::NoUser(user.to_owned()))?;
    let gid = match group {
        Some(g) => {
            Group::from_name(g)
                .map_err(sys(format!("--group {g}")))?
                .ok_or_else(|| PrivDropError::NoGroup(g.to_owned()))?
                .gid
        }
        None => u.gid,
    };
    setgroups(&[gid]).map_err(sys("setgroups"))?;
    setgid(gid).map_err(sys(format!("setgid({gid})")))?;
    setuid(u.uid).map_err(sys(format!("setuid({})", u.uid)))?;
    if geteuid() != u.uid
        || getegid() != gid
        || (!u.uid.is_root() && setuid(Uid::from_raw(0)).is_ok())
    {
        return Err(PrivDropError::StillPrivileged);
    }
    Ok((u.uid, gid))
}
