//! What the stage modules share.

pub mod secrets;
