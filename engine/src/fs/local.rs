//! The container's file system: is it local (SPEC [C6]), durable directory syncs, random ids.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::error::{io_at, ContainerError};
use crate::fs::sys;

const NETWORK_FS: &[(i64, &str)] = &[
    (0x6969, "NFS"),
    (0x517B, "SMB"),
    (0xFE53_4D42, "SMB2"),
    (0xFF53_4D42, "CIFS"),
    (0x6573_5546, "FUSE"),
    (0x5346_414F, "AFS"),
    (0x00C3_6400, "Ceph"),
    (0x0102_1997, "9p"),
];

/// `fsync` a directory so renames and creations in it are durable.
pub(crate) fn fsync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// The network file system a `statfs` magic number names, if it is one ([F1]).
pub(crate) fn network_fs(magic: i64) -> Option<&'static str> {
    NETWORK_FS
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, fs)| *fs)
}

pub(crate) fn check_local_fs(path: &Path) -> Result<(), ContainerError> {
    let magic = sys::fs_magic(path).map_err(io_at(path, "statfs", ContainerError::io))?;
    match network_fs(magic) {
        Some(fs) => Err(ContainerError::NetworkFileSystem {
            path: path.to_path_buf(),
            fs,
        }),
        None => Ok(()),
    }
}

/// 32 random lowercase hex digits (a session id, [P1]; a temporary name).
pub(crate) fn random_id() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    // The system call, not `/dev/urandom`: no open, read and close at every session start.
    sys::random_bytes(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_file_systems_are_named_and_local_ones_are_not() {
        assert_eq!(network_fs(0x6969), Some("NFS"));
        assert_eq!(network_fs(0xFF53_4D42), Some("CIFS"));
        assert_eq!(network_fs(0x6573_5546), Some("FUSE"));
        assert_eq!(network_fs(0x0102_1994), None); // tmpfs
        assert_eq!(network_fs(0xEF53), None); // ext4
        assert_eq!(network_fs(0x5846_5342), None); // xfs
                                                   // The machine running the tests: /dev/shm and the temp dir are local.
        for p in ["/dev/shm", "/tmp"] {
            if Path::new(p).is_dir() {
                assert!(check_local_fs(Path::new(p)).is_ok(), "{p}");
            }
        }
    }
}
