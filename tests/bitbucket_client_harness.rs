#[path = "it/bitbucket_client.rs"]
mod bitbucket_client;
