//! `inmoment-destination`: see `--help`.

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::process::ExitCode;
use std::sync::Arc;

use inmoment_core::Registry;
use inmoment_delivery::{Attempts, InMomentDeliver, SurveyBatcher, SURVEY_BATCH_WINDOW};
use inmoment_host::cli::{self, Cli, Command, DeadCommand, QueueCommand, SandboxArgs, ServeArgs};
use inmoment_host::config::Config;
use inmoment_host::{
    demo, handlers_cmd, linked, logging, map_cmd, queue_cmd, queue_shared, remap_cmd, send, service,
};
use inmoment_ingest::serve;
use inmoment_sandbox::{Sandbox, SandboxConfig};
use inmoment_store::Selection;
use tokio::net::TcpListener;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Exit codes: 0 done, 1 some events failed, 2 could not start (bad settings, bad build).
fn run(cli: Cli) -> Result<ExitCode, String> {
    let registry = linked::registry().map_err(|e| e.to_string())?;
    match cli.command {
        Command::Handlers => {
            handlers_cmd::run(&registry, &mut io::stdout().lock()).map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Map(args) => {
            let (_, source) = args.settings.load().map_err(|e| e.to_string())?;
            let settings = source.settings;
            let mut out = BufWriter::new(io::stdout().lock());
            let summary = match args.file.as_deref() {
                Some(path) if path.as_os_str() != "-" => {
                    let file = File::open(path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                    map_cmd::run(&registry, &settings, BufReader::new(file), &mut out)
                }
                _ => map_cmd::run(&registry, &settings, io::stdin().lock(), &mut out),
            }
            .map_err(|e| format!("writing output: {e}"))?;
            if summary.failed > 0 {
                eprintln!(
                    "{} event(s) mapped, {} failed (see the lines with \"error\")",
                    summary.mapped, summary.failed
                );
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Queue(args) => {
            let dir = args.data_dir.as_path();
            let mut out = io::stdout().lock();
            let shared = args.store.as_deref().filter(|url| !url.is_empty());
            if let QueueCommand::Remap(remap) = &args.command {
                return remap_cmd::command(dir, shared, &registry, remap, &mut out);
            }
            if let Some(url) = shared {
                let complete = queue_shared::run(url, &args.command, &mut out)?;
                return Ok(if complete {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            let result = match args.command {
                QueueCommand::Stats => queue_cmd::stats(dir, &mut out, &mut io::stderr()),
                QueueCommand::Remap(_) => Ok(()), // run above
                QueueCommand::Dead { command } => match command {
                    DeadCommand::List { limit } => queue_cmd::dead_list(dir, limit, &mut out),
                    DeadCommand::Replay { all, ids } => {
                        if !all && ids.is_empty() {
                            return Err("dead replay: name dead letter ids or pass --all".into());
                        }
                        let selection = if all {
                            Selection::All
                        } else {
                            Selection::Ids(ids)
                        };
                        let replayed =
                            queue_cmd::dead_replay(dir, &selection).map_err(|e| e.to_string())?;
                        eprintln!("{} dead letter(s) back to pending", replayed.moved);
                        if !replayed.unknown.is_empty() {
                            let ids: Vec<String> =
                                replayed.unknown.iter().map(i64::to_string).collect();
                            eprintln!(
                                "no dead letter with id {} (see `queue dead list`)",
                                ids.join(", ")
                            );
                            return Ok(ExitCode::from(1));
                        }
                        Ok(())
                    }
                    DeadCommand::Purge { older_than } => queue_cmd::dead_purge(dir, &older_than)
                        .map(|n| eprintln!("{n} dead letter(s) deleted")),
                },
            };
            result.map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Send(args) => send::command(*args, &registry).map_err(|e| e.to_string()),
        Command::Serve(args) => serve_command(*args, registry),
        Command::Sandbox(args) => sandbox_command(args),
    }
}

/// `serve`: the configuration is complete and valid before anything listens.
fn serve_command(args: ServeArgs, registry: Registry) -> Result<ExitCode, String> {
    let runtime = runtime()?;
    runtime.block_on(async move {
        let mut demo_sandbox = None;
        let config = if args.demo {
            let sandbox = Sandbox::start(SandboxConfig::default())
                .await
                .map_err(|e| format!("cannot start the demo sandbox: {e}"))?;
            let env = demo::environment(sandbox.base_url());
            let config = Config::load(args.config.as_deref(), &env, &args.flags);
            demo_sandbox = Some(sandbox);
            config
        } else {
            Config::from_process(args.config.as_deref(), &args.flags)
        }
        .map_err(|e| e.to_string())?;
        if args.print_config {
            print!("{}", config.redacted_toml());
            return Ok(());
        }
        logging::init(config.log_format);
        let deliver = InMomentDeliver::from_config(&config, Attempts::Once)?;
        let deliver = Arc::new(SurveyBatcher::new(Arc::new(deliver), SURVEY_BATCH_WINDOW));
        let store = service::open_store(&config, registry).await?;
        let listener = TcpListener::bind(config.listen).await.map_err(|e| {
            format!(
                "listen (INMOMENT_LISTEN): cannot listen on {}: {e}",
                config.listen
            )
        })?;
        let mut delivery = service::delivery_config(&config);
        if let Some(sandbox) = &demo_sandbox {
            let listen = listener.local_addr().map_err(|e| e.to_string())?;
            println!("{}", demo::banner(listen, &sandbox.base_url()));
            delivery.log_deliveries = true;
        }
        service::run(
            config,
            store,
            deliver,
            delivery,
            listener,
            serve::shutdown_signal(),
        )
        .await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `sandbox`: the fake InMoment on its own, until ctrl-c or SIGTERM.
fn sandbox_command(args: SandboxArgs) -> Result<ExitCode, String> {
    runtime()?.block_on(async move {
        let listener = TcpListener::bind(&args.listen)
            .await
            .map_err(|e| format!("--listen: cannot listen on {}: {e}", args.listen))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        println!("InMoment sandbox on http://{address} (account {}, client id {}); requests it received: http://{address}/_sandbox/requests", demo::ACCOUNT_TOKEN, demo::CLIENT_ID);
        let mut config = SandboxConfig::default();
        config.rate_limit.per_minute = args.rate_limit_per_minute;
        inmoment_sandbox::serve(listener, config, serve::shutdown_signal())
            .await
            .map_err(|e| format!("sandbox failed: {e}"))
    })?;
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}
