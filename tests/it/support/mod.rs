//! What the stage modules share.

pub mod api;
pub mod checkout;
pub mod provision;
pub mod remote;
pub mod secrets;
pub mod workspace;
