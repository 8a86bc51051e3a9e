//! `serve`: the cifaas model server.
#![forbid(unsafe_code)]

fn main() {
    eprintln!("serve: not built yet");
    std::process::exit(2);
}
