fn main() -> std::process::ExitCode {
    ticketd::cli::main()
}
