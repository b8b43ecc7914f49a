//! Where a topology comes from: this machine, an hwloc synthetic string, or
//! an hwloc XML file (also from the `NUMATREE_TOPOLOGY` variable).

use std::fmt;
use std::path::{Path, PathBuf};

/// Where the topology comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TopologySource {
    /// The machine this process runs on. Binding is applied.
    System,
    /// An hwloc synthetic description such as `pack:2 numa:2 core:4 pu:1`
    /// (see hwloc's "Synthetic topologies" documentation). Binding is skipped.
    Synthetic(String),
    /// An hwloc XML file, e.g. written by `lstopo server.xml` on a real
    /// server. Binding is skipped.
    XmlFile(PathBuf),
}

impl TopologySource {
    /// The environment variable [`TopologySource::from_env`] reads.
    pub const ENV_VAR: &'static str = "NUMATREE_TOPOLOGY";

    /// Reads `NUMATREE_TOPOLOGY` and interprets it with
    /// [`TopologySource::parse`]; `None` when it is unset or empty.
    pub fn from_env() -> Option<Self> {
        let value = std::env::var_os(Self::ENV_VAR)?;
        match value.to_str() {
            Some(text) => Self::parse(text),
            // Only a path can be non-UTF-8.
            None => Some(Self::XmlFile(PathBuf::from(value))),
        }
    }

    /// Interprets a `NUMATREE_TOPOLOGY` value (surrounding whitespace is
    /// ignored):
    ///
    /// - empty: `None` (use the default, normally [`TopologySource::System`]);
    /// - the path of an existing file, or anything ending in `.xml` (any
    ///   case): [`TopologySource::XmlFile`];
    /// - `system`: [`TopologySource::System`];
    /// - anything else: [`TopologySource::Synthetic`], validated by hwloc only
    ///   when loaded.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        let path = Path::new(value);
        if value.to_ascii_lowercase().ends_with(".xml") || path.is_file() {
            return Some(Self::XmlFile(path.to_path_buf()));
        }
        if value == "system" {
            return Some(Self::System);
        }
        Some(Self::Synthetic(value.to_owned()))
    }
}

impl fmt::Display for TopologySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => f.write_str("this system"),
            Self::Synthetic(desc) => write!(f, "synthetic {desc:?}"),
            Self::XmlFile(path) => write!(f, "XML file {}", path.display()),
        }
    }
}
