//! A writer for the "newc" cpio format, the one Linux unpacks as an
//! initramfs (`Documentation/driver-api/early-userspace/buffer-format.rst`).
//!
//! Every entry is a 110-byte ASCII header (`070701` and thirteen 8-digit hex
//! fields), the NUL-terminated name, padding to 4 bytes, the data, padding
//! to 4 bytes; a `TRAILER!!!` entry ends the archive. Owners are root and
//! times 0, so the same inputs give the same bytes. Device nodes are written
//! as entries, so building one needs no privilege.

use std::collections::BTreeSet;

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// An archive being built in memory. Parent directories are added on
/// demand, each once.
#[derive(Default)]
pub(crate) struct Archive {
    bytes: Vec<u8>,
    next_ino: u32,
    dirs: BTreeSet<String>,
}

/// The header fields that vary between entries.
struct Entry<'a> {
    name: &'a str,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
    data: &'a [u8],
}

impl Archive {
    /// A directory (mode 0755) and its missing parents.
    pub(crate) fn dir(&mut self, path: &str) {
        let path = path.trim_matches('/');
        if path.is_empty() || self.dirs.contains(path) {
            return;
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.dirs.insert(path.to_owned());
        self.entry(Entry {
            name: path,
            mode: S_IFDIR | 0o755,
            nlink: 2,
            rdev: (0, 0),
            data: &[],
        });
    }

    /// A regular file with permission bits `perm` (e.g. `0o755`).
    pub(crate) fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        let name = self.parent_of(path);
        self.entry(Entry {
            name: &name,
            mode: S_IFREG | perm,
            nlink: 1,
            rdev: (0, 0),
            data,
        });
    }

    /// A symbolic link at `path` pointing to `target`.
    pub(crate) fn symlink(&mut self, path: &str, target: &str) {
        let name = self.parent_of(path);
        self.entry(Entry {
            name: &name,
            mode: S_IFLNK | 0o777,
            nlink: 1,
            rdev: (0, 0),
            data: target.as_bytes(),
        });
    }

    /// A character device node (`/dev/console` is 5,1).
    pub(crate) fn char_device(&mut self, path: &str, perm: u32, major: u32, minor: u32) {
        let name = self.parent_of(path);
        self.entry(Entry {
            name: &name,
            mode: S_IFCHR | perm,
            nlink: 1,
            rdev: (major, minor),
            data: &[],
        });
    }

    /// Ends the archive and returns its bytes.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.next_ino = 0;
        self.entry(Entry {
            name: "TRAILER!!!",
            mode: 0,
            nlink: 1,
            rdev: (0, 0),
            data: &[],
        });
        self.bytes
    }

    /// Creates the parents of `path`; returns `path` without leading `/`.
    fn parent_of(&mut self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        path.to_owned()
    }

    fn entry(&mut self, e: Entry<'_>) {
        let ino = self.next_ino;
        self.next_ino += 1;
        let fields = [
            ino,
            e.mode,
            0, // uid
            0, // gid
            e.nlink,
            0, // mtime
            u32::try_from(e.data.len()).expect("initramfs entries are < 4 GiB"),
            0, // devmajor
            0, // devminor
            e.rdev.0,
            e.rdev.1,
            u32::try_from(e.name.len() + 1).expect("short names"),
            0, // check
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(e.name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(e.data);
        self.pad();
    }

    fn pad(&mut self) {
        self.bytes.resize(self.bytes.len().next_multiple_of(4), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, mode, rdev, data) of an entry, read back.
    type Parsed = (String, u32, (u32, u32), Vec<u8>);

    fn parse(mut bytes: &[u8]) -> Vec<Parsed> {
        let mut out = Vec::new();
        let total = bytes.len();
        loop {
            assert_eq!((total - bytes.len()) % 4, 0, "entries start 4-aligned");
            assert_eq!(&bytes[..6], b"070701");
            let field = |i: usize| {
                let hex = std::str::from_utf8(&bytes[6 + 8 * i..14 + 8 * i]).unwrap();
                u32::from_str_radix(hex, 16).unwrap() as usize
            };
            let (mode, size, rdev) = (field(1), field(6), (field(9), field(10)));
            let namesize = field(11);
            let name = std::str::from_utf8(&bytes[110..110 + namesize - 1]).unwrap();
            assert_eq!(bytes[110 + namesize - 1], 0, "names end in NUL");
            let data_at = (110 + namesize).next_multiple_of(4);
            let data = bytes[data_at..data_at + size].to_vec();
            out.push((
                name.to_owned(),
                mode as u32,
                (rdev.0 as u32, rdev.1 as u32),
                data,
            ));
            bytes = &bytes[(data_at + size).next_multiple_of(4)..];
            if name == "TRAILER!!!" {
                assert!(bytes.is_empty(), "nothing after the trailer");
                return out;
            }
        }
    }

    #[test]
    fn entries_read_back_with_parents_first_and_a_trailer_last() {
        let mut a = Archive::default();
        a.file("/lib/x86_64-linux-gnu/libc.so.6", 0o755, b"\x7fELF...");
        a.file("/init", 0o755, b"#!/bin/sh\n");
        a.symlink("/bin/sh", "busybox");
        a.char_device("/dev/console", 0o600, 5, 1);
        a.dir("lib/x86_64-linux-gnu");
        let entries = parse(&a.finish());
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "lib",
                "lib/x86_64-linux-gnu",
                "lib/x86_64-linux-gnu/libc.so.6",
                "init",
                "bin",
                "bin/sh",
                "dev",
                "dev/console",
                "TRAILER!!!"
            ]
        );
        assert_eq!(entries[2].1, 0o100_755);
        assert_eq!(entries[2].3, b"\x7fELF...");
        assert_eq!(entries[5].1, 0o120_777);
        assert_eq!(entries[5].3, b"busybox");
        assert_eq!(entries[7].1, 0o020_600);
        assert_eq!(entries[7].2, (5, 1));
        assert_eq!(entries[0].1, 0o040_755);
    }

    #[test]
    fn header_is_the_newc_layout() {
        let mut a = Archive::default();
        a.file("a", 0o644, b"xyz");
        let bytes = a.finish();
        let header = std::str::from_utf8(&bytes[..110]).unwrap();
        assert_eq!(
            header,
            "070701\
             00000000000081A4000000000000000000000001000000000000000300000000\
             0000000000000000000000000000000200000000"
        );
        // Name "a\0" pads the 112-byte header to 112; data "xyz" pads to 4.
        assert_eq!(&bytes[110..116], b"a\0xyz\0");
    }
}
