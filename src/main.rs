//! The `ticketd` binary: runs what the command line names (everything else is the library).
/// Every freed block is zeroed first, so tokens do not linger in freed memory (see
/// [`ticketd::secret::ZeroOnFree`]).
#[global_allocator]
static ALLOCATOR: ticketd::secret::ZeroOnFree = ticketd::secret::ZeroOnFree;

fn main() -> std::process::ExitCode {
    ticketd::cli::main()
}
