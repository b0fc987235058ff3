//! `loadgen ADDR PATH CONNECTIONS TOTAL BODY_FILE [RATE] [HEADER:VALUE...]`: prints one JSON
//! report line. Kept positional and tiny: `cargo xtask bench` is its only caller.

use inmoment_loadgen::{run, LoadConfig};

#[tokio::main]
async fn main() {
    if let Err(message) = main_inner().await {
        eprintln!("loadgen: {message}");
        std::process::exit(2);
    }
}

async fn main_inner() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        return Err(
            "usage: loadgen ADDR PATH CONNECTIONS TOTAL BODY_FILE [RATE|-] [HEADER:VALUE...]"
                .into(),
        );
    }
    let addr = args[0]
        .parse()
        .map_err(|e| format!("ADDR `{}`: {e}", args[0]))?;
    let connections = args[2].parse().map_err(|e| format!("CONNECTIONS: {e}"))?;
    let total = args[3].parse().map_err(|e| format!("TOTAL: {e}"))?;
    let body_template =
        std::fs::read_to_string(&args[4]).map_err(|e| format!("BODY_FILE `{}`: {e}", args[4]))?;
    let rate = match args.get(5).map(String::as_str) {
        None | Some("-") => None,
        Some(r) => Some(r.parse().map_err(|e| format!("RATE: {e}"))?),
    };
    let headers = args
        .iter()
        .skip(6)
        .filter_map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let config = LoadConfig {
        addr,
        path: args[1].clone(),
        connections,
        total,
        body_template,
        headers,
        rate,
    };
    let report = run(config).await.map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string(&report).map_err(|e| e.to_string())?
    );
    Ok(())
}
