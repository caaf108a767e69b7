//! Random identifiers and secrets and their digests: shared with the door, in
//! `doorbell-common` (re-exported here for the hub's modules).

pub use doorbell_common::files::write_private_file;
pub use doorbell_common::secrets::*;
