//! REST client for Bitbucket Cloud 2.0 and Data Center 1.0: pagination, rate limiting,
//! errors turned into hints. (Filled in by the clone/check and API-tools issues.)
