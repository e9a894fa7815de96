fn main() -> std::process::ExitCode {
    mps_edge::cli::main()
}
