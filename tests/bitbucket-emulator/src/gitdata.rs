//! Repository data for the REST API, read with git2.
