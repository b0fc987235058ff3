//! `serve --demo`: the whole service on one machine with nothing to set up. An in-process
//! InMoment sandbox stands in for InMoment, with its demo account; the demo write key is
//! printed with a curl line to try. Nothing reaches the real InMoment in this mode.

use std::net::SocketAddr;

/// The write key the demo accepts.
pub const WRITE_KEY: &str = "demo-write-key";
/// The sandbox's demo account (see `inmoment_sandbox::AccountConfig::demo`).
pub const ACCOUNT_TOKEN: &str = "NPS-d3m0d3m0";
pub const CLIENT_ID: &str = "demo-client-id";
/// Where demo events are stored unless `--data-dir` says otherwise, apart from real data.
pub const DATA_DIR: &str = "./demo-data";

/// The environment `serve --demo` reads its configuration from: the real environment,
/// with the InMoment account, write key and InMoment URLs forced to the demo's.
pub fn environment(sandbox_url: String) -> impl Fn(&str) -> Option<String> {
    move |name| match name {
        "INMOMENT_ACCOUNT_TOKEN" => Some(ACCOUNT_TOKEN.to_string()),
        "INMOMENT_CLIENT_ID" => Some(CLIENT_ID.to_string()),
        "INMOMENT_CLIENT_SECRET" => None,
        "INMOMENT_WRITE_KEYS" => Some(WRITE_KEY.to_string()),
        "INMOMENT_ELIGIBILITY_URL" | "INMOMENT_API_URL" => Some(sandbox_url.clone()),
        "INMOMENT_DATA_DIR" => Some(std::env::var(name).unwrap_or_else(|_| DATA_DIR.to_string())),
        other => std::env::var(other).ok(),
    }
}

/// What the demo prints on start-up.
pub fn banner(listen: SocketAddr, sandbox_url: &str) -> String {
    format!(
        "inmoment-destination demo\n\
         \x20 ingest (Segment HTTP API): http://{listen}   write key: {WRITE_KEY}\n\
         \x20 InMoment sandbox:          {sandbox_url}   (what it received: {sandbox_url}/_sandbox/requests)\n\
         Try:\n\
         \x20 curl -u {WRITE_KEY}: -H 'Content-Type: application/json' http://{listen}/v1/identify \\\n\
         \x20   -d '{{\"userId\":\"u-1\",\"traits\":{{\"email\":\"ann@example.com\",\"createdAt\":\"2025-03-01T10:00:00Z\",\"plan\":\"pro\"}}}}'\n\
         \x20 curl -u {WRITE_KEY}: -H 'Content-Type: application/json' http://{listen}/v1/track \\\n\
         \x20   -d '{{\"userId\":\"u-1\",\"event\":\"Invoice Paid\",\"properties\":{{\"amount_amount\":49}}}}'\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_forces_the_account_and_the_urls() {
        let env = environment("http://127.0.0.1:9".into());
        assert_eq!(
            env("INMOMENT_ACCOUNT_TOKEN").as_deref(),
            Some(ACCOUNT_TOKEN)
        );
        assert_eq!(
            env("INMOMENT_API_URL").as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(
            env("INMOMENT_ELIGIBILITY_URL").as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(env("INMOMENT_WRITE_KEYS").as_deref(), Some(WRITE_KEY));
        assert_eq!(env("INMOMENT_CLIENT_SECRET"), None);
    }
}
