//! The `pgcqrs` binary: parse the command line, run the command (one module
//! per subcommand in `cli/`).

mod cli;

use clap::Parser;

/// mimalloc instead of the C library's allocator: a request allocates and
/// frees many small buffers, and glibc's malloc was a sixth of the
/// service's CPU under read load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::Cli::parse().run().await
}
