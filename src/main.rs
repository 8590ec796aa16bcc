//! The `rollcall` binary: parse the command line and hand it to `cli`.

/// A million-row run holds millions of short strings (names, IDs, emails); mimalloc packs
/// them in small size classes where the system allocator rounds each up to 32 bytes.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = rollcall::cli::parse();
    rollcall::telemetry::init(cli.config.log_json);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(rollcall::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
