//! Cloud and Data Center pagination.
