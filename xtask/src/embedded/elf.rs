//! Flash and RAM of a firmware image, from its ELF section headers.
//!
//! A 32-bit little-endian ELF (what `thumbv7em-none-eabihf` links) is read by
//! hand: the section headers are all we need, and a parser crate would be
//! the xtask's largest dependency for sixty lines of work.
//!
//! Allocated sections are classified by their flags: executable ones are
//! `text`, other read-only ones `rodata` (the vector table included),
//! writable ones with contents `data` (their initial image also occupies
//! flash), writable ones without (`SHT_NOBITS`) `bss` (`.uninit` included).
//! Flash is text + rodata + data; RAM is data + bss, the stack not included.

use anyhow::{bail, ensure, Result};

const SHF_WRITE: u32 = 0x1;
const SHF_ALLOC: u32 = 0x2;
const SHF_EXECINSTR: u32 = 0x4;
const SHT_NOBITS: u32 = 8;

/// Bytes of each kind of allocated section.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sizes {
    /// Executable code.
    pub(crate) text: u64,
    /// Read-only data, the vector table included.
    pub(crate) rodata: u64,
    /// Initialized statics: in RAM, and their initial image in flash.
    pub(crate) data: u64,
    /// Zeroed and uninitialized statics.
    pub(crate) bss: u64,
}

impl Sizes {
    /// Bytes of flash: text + rodata + data's initial image.
    pub(crate) fn flash(&self) -> u64 {
        self.text + self.rodata + self.data
    }

    /// Bytes of static RAM: data + bss (the stack comes on top).
    pub(crate) fn ram(&self) -> u64 {
        self.data + self.bss
    }
}

/// The section sizes of the ELF32 little-endian image `elf`.
pub(crate) fn sizes(elf: &[u8]) -> Result<Sizes> {
    ensure!(
        elf.len() >= 52 && elf[..4] == *b"\x7fELF",
        "not an ELF file"
    );
    if elf[4] != 1 || elf[5] != 1 {
        bail!(
            "not a 32-bit little-endian ELF (class {}, data {})",
            elf[4],
            elf[5]
        );
    }
    let u16_at = |at: usize| -> Result<u32> {
        let bytes = elf.get(at..at + 2).ok_or_else(|| truncated(at))?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]) as u32)
    };
    let u32_at = |at: usize| -> Result<u32> {
        let bytes = elf.get(at..at + 4).ok_or_else(|| truncated(at))?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    };
    let shoff = u32_at(0x20)? as usize;
    let shentsize = u16_at(0x2E)? as usize;
    let shnum = u16_at(0x30)? as usize;
    ensure!(
        shentsize >= 40,
        "section header entries of {shentsize} bytes are too short"
    );
    let mut sizes = Sizes::default();
    for i in 0..shnum {
        let header = shoff + i * shentsize;
        let kind = u32_at(header + 4)?;
        let flags = u32_at(header + 8)?;
        let size = u64::from(u32_at(header + 20)?);
        if flags & SHF_ALLOC == 0 {
            continue;
        }
        let field = if flags & SHF_WRITE != 0 {
            if kind == SHT_NOBITS {
                &mut sizes.bss
            } else {
                &mut sizes.data
            }
        } else if flags & SHF_EXECINSTR != 0 {
            &mut sizes.text
        } else {
            &mut sizes.rodata
        };
        *field += size;
    }
    Ok(sizes)
}

fn truncated(at: usize) -> anyhow::Error {
    anyhow::anyhow!("truncated ELF: no bytes at offset {at:#x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF32 image: the file header and `sections` as
    /// (type, flags, size) section headers.
    fn image(sections: &[(u32, u32, u32)]) -> Vec<u8> {
        let mut elf = vec![0u8; 52];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 1;
        elf[5] = 1;
        elf[0x20..0x24].copy_from_slice(&52u32.to_le_bytes());
        elf[0x2E..0x30].copy_from_slice(&40u16.to_le_bytes());
        elf[0x30..0x32].copy_from_slice(&(sections.len() as u16).to_le_bytes());
        for &(kind, flags, size) in sections {
            let mut header = [0u8; 40];
            header[4..8].copy_from_slice(&kind.to_le_bytes());
            header[8..12].copy_from_slice(&flags.to_le_bytes());
            header[20..24].copy_from_slice(&size.to_le_bytes());
            elf.extend_from_slice(&header);
        }
        elf
    }

    #[test]
    fn sections_are_classified_by_their_flags() {
        const PROGBITS: u32 = 1;
        let elf = image(&[
            (0, 0, 0),                                   // null section
            (PROGBITS, SHF_ALLOC, 0x400),                // .vector_table
            (PROGBITS, SHF_ALLOC | SHF_EXECINSTR, 1000), // .text
            (PROGBITS, SHF_ALLOC, 200),                  // .rodata
            (PROGBITS, SHF_ALLOC | SHF_WRITE, 16),       // .data
            (SHT_NOBITS, SHF_ALLOC | SHF_WRITE, 5000),   // .bss
            (SHT_NOBITS, SHF_ALLOC | SHF_WRITE, 8),      // .uninit
            (PROGBITS, 0, 99_999),                       // .debug_info
        ]);
        let sizes = sizes(&elf).unwrap();
        assert_eq!(
            sizes,
            Sizes {
                text: 1000,
                rodata: 0x400 + 200,
                data: 16,
                bss: 5008,
            }
        );
        assert_eq!(sizes.flash(), 1000 + 0x400 + 200 + 16);
        assert_eq!(sizes.ram(), 16 + 5008);
    }

    #[test]
    fn non_elf_and_64_bit_images_are_rejected() {
        assert!(sizes(b"hello").is_err());
        let mut elf = image(&[]);
        elf[4] = 2;
        assert!(sizes(&elf).unwrap_err().to_string().contains("32-bit"));
        let mut short = image(&[(1, SHF_ALLOC, 4)]);
        short.truncate(70);
        assert!(sizes(&short).unwrap_err().to_string().contains("truncated"));
    }
}
