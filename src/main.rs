//! The `ticketd` binary: parses the command line and runs what it names (everything else is the library).
/// Every freed block is zeroed first, so tokens do not linger in freed memory (see
/// [`ticketd::heap::ZeroOnFree`]).
#[global_allocator]
static ALLOCATOR: ticketd::heap::ZeroOnFree = ticketd::heap::ZeroOnFree;

fn main() -> std::process::ExitCode {
    ticketd::cli::main()
}
