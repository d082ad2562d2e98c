//! `orderly`: one binary for every worker and every operator command.
//!
//! `orderly run <worker>` hosts a worker (or `all` of them) in this process; the operator
//! commands (`migrate`, `topology`, `publish`, `dlq`, `outbox`, `orders`, `inventory`,
//! `demo`, `loadgen`, `bench`) talk to the same broker and database through the same runtime.
//! See `orderly --help`.

use clap::Parser;

/// Exit status of a command whose output pipe was closed (`orderly dlq list orders | head`):
/// what a shell reports for a Unix tool ended by `SIGPIPE` (128 + 13).
const CLOSED_PIPE: i32 = 141;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    exit_quietly_on_a_closed_pipe();
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

/// Rust ignores `SIGPIPE`, so printing to a pipe whose reader has gone (`| head`) makes
/// `println!` panic with a backtrace. A command-line tool should end quietly instead, as Unix
/// tools do when the signal ends them: this hook does that for exactly that panic, and leaves
/// every other panic to the default hook.
fn exit_quietly_on_a_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(CLOSED_PIPE);
        }
        default(info);
    }));
}
