//! The `netloom` binary.

use std::process::ExitCode;

use clap::Parser as _;
use netloom::commands::{Cli, StatusError, parse_error};

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let status = parse_error(e, &argv);
            if !status.message.is_empty() {
                if status.code == 0 {
                    print!("{}", status.message);
                } else {
                    eprintln!("{}", status.message);
                }
            }
            return ExitCode::from(status.code);
        }
    };
    // The shim and exec helpers enter namespaces and must run on the main thread, before any
    // runtime thread exists.
    let cli = match cli.command {
        netloom::commands::Command::Shim(args) => return netloom::shim::run(args),
        netloom::commands::Command::ExecIn(args) => return netloom::shim::exec_main(args),
        command => Cli { command, ..cli },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<StatusError>() {
            Some(s) => {
                if !s.message.is_empty() {
                    eprintln!("{}", s.message);
                }
                ExitCode::from(s.code)
            }
            None => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
    }
}
