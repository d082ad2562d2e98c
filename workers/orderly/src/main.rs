//! `orderly`: one binary for every worker and every operator command.
//!
//! `orderly run <worker>` hosts a worker (or `all` of them) in this process; the operator
//! commands (`migrate`, `topology`, `publish`, `dlq`, `outbox`, `orders`, `inventory`,
//! `demo`, `loadgen`, `bench`) talk to the same broker and database through the same runtime.
//! See `orderly --help`.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = orderly::cli::Cli::parse();
    orderly_runtime::telemetry::init(cli.default_log_filter());
    match cli.execute().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // One line an operator can act on, with the cause chain (causes whose text the
            // message already contains are not repeated).
            let mut line = err.to_string();
            for cause in err.chain().skip(1) {
                let text = cause.to_string();
                if !line.contains(&text) {
                    line = format!("{line}: {text}");
                }
            }
            eprintln!("error: {line}");
            std::process::ExitCode::FAILURE
        }
    }
}
