use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    let mut full = vec!["serve"];
    full.extend_from_slice(args);
    Cli::try_parse_checked(full)
}

fn parse_ok(args: &[&str]) -> Cli {
    parse(args).unwrap_or_else(|error| panic!("{args:?}: {error}"))
}

fn error_text(args: &[&str]) -> String {
    parse(args).expect_err("expected an error").to_string()
}

const BASE: [&str; 4] = ["--mode", "server", "--model", "net.ckpt"];

fn with_base<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = BASE.to_vec();
    args.extend_from_slice(extra);
    args
}

#[test]
fn mode_spellings() {
    assert_eq!(
        parse_ok(&["--mode", "function", "-m", "a"]).mode,
        Mode::Function
    );
    assert_eq!(parse_ok(&["--mode=server", "-m", "a"]).mode, Mode::Server);
    assert_eq!(
        parse_ok(&["--mode", "function", "--mode", "server", "-m", "a"]).mode,
        Mode::Server
    );
}

#[test]
fn mode_missing_or_invalid() {
    let missing = error_text(&["--model", "a"]);
    assert!(missing.contains("--mode <MODE>"), "{missing}");
    let invalid = error_text(&["--mode", "daemon", "--model", "a"]);
    assert!(invalid.contains("invalid value 'daemon'"), "{invalid}");
    assert!(invalid.contains("function, server"), "{invalid}");
}

#[test]
fn threads_spellings() {
    assert_eq!(parse_ok(&with_base(&["--threads", "3"])).threads, Some(3));
    assert_eq!(parse_ok(&with_base(&["--threads=4"])).threads, Some(4));
    assert_eq!(parse_ok(&with_base(&["-t", "5"])).threads, Some(5));
    assert_eq!(
        parse_ok(&with_base(&["-t", "1", "--threads", "2"])).threads,
        Some(2)
    );
    assert_eq!(parse_ok(&BASE).threads, None);
}

#[test]
fn threads_invalid_values() {
    let zero = error_text(&with_base(&["--threads", "0"]));
    assert!(
        zero.contains("invalid value '0' for '--threads <N>'"),
        "{zero}"
    );
    assert!(
        zero.contains("the thread count must be at least 1"),
        "{zero}"
    );
    let word = error_text(&with_base(&["--threads", "many"]));
    assert!(
        word.contains("expected a positive integer thread count"),
        "{word}"
    );
}

#[test]
fn bind_spellings() {
    let expected = Bind::Address("127.0.0.1:0".parse().unwrap());
    assert_eq!(
        parse_ok(&with_base(&["--bind", "127.0.0.1:0"])).bind,
        Some(expected)
    );
    assert_eq!(
        parse_ok(&with_base(&["--bind=127.0.0.1:0"])).bind,
        Some(expected)
    );
    assert_eq!(
        parse_ok(&with_base(&["-b", "127.0.0.1:0"])).bind,
        Some(expected)
    );
    let last = parse_ok(&with_base(&["-b", "127.0.0.1:1", "--bind", "[::1]:9"])).bind;
    assert_eq!(last, Some(Bind::Address("[::1]:9".parse().unwrap())));
    let host = parse_ok(&with_base(&["--bind", "127.0.0.1"])).bind;
    assert_eq!(host, Some(Bind::Host("127.0.0.1".parse().unwrap())));
}

#[test]
fn bind_invalid_value() {
    let text = error_text(&with_base(&["--bind", "localhost"]));
    assert!(
        text.contains("invalid value 'localhost' for '--bind <ADDR>'"),
        "{text}"
    );
    assert!(
        text.contains("expected IP:PORT such as 127.0.0.1:5000"),
        "{text}"
    );
    let port = error_text(&with_base(&["--bind", "127.0.0.1:99999"]));
    assert!(port.contains("invalid value '127.0.0.1:99999'"), "{port}");
}

#[test]
fn model_and_data_spellings() {
    let cli = parse_ok(&["--mode", "server", "--model=a.ckpt", "--data", "d"]);
    assert_eq!(cli.model, Some(PathBuf::from("a.ckpt")));
    assert_eq!(cli.data, Some(PathBuf::from("d")));
    let cli = parse_ok(&[
        "--mode", "server", "-m", "a", "-m", "b", "-d", "x", "--data=y",
    ]);
    assert_eq!(cli.model, Some(PathBuf::from("b")));
    assert_eq!(cli.data, Some(PathBuf::from("y")));
}

#[test]
fn model_and_data_optional() {
    // Without both, start-up looks in the default data folder instead.
    let cli = parse_ok(&["--mode", "function"]);
    assert_eq!(cli.model, None);
    assert_eq!(cli.data, None);
}

#[test]
fn download_spellings() {
    let default = parse_ok(&BASE).download;
    assert!(!default.download);
    assert_eq!(default.source(), crate::fetch::DownloadSource::default());
    assert!(parse_ok(&with_base(&["--download"])).download.download);
    let repeated = parse_ok(&with_base(&["--download", "--download"]));
    assert!(repeated.download.download);
}

#[test]
fn download_conflicts_with_data() {
    let text = error_text(&with_base(&["--download", "--data", "d"]));
    assert!(text.contains("cannot be used with"), "{text}");
    assert!(text.contains("--data"), "{text}");
}

#[test]
fn data_url_spellings() {
    let url = "http://127.0.0.1:9/a.tar.gz";
    let spaced = parse_ok(&with_base(&["--data-url", url])).download;
    assert_eq!(spaced.source().url, url);
    let equals = parse_ok(&with_base(&["--data-url=http://127.0.0.1:9/b"])).download;
    assert_eq!(equals.source().url, "http://127.0.0.1:9/b");
    let last = parse_ok(&with_base(&["--data-url", "x", "--data-url", url])).download;
    assert_eq!(last.source().url, url);
}

#[test]
fn data_md5_spellings() {
    let hex = "00112233445566778899aabbccddeeff";
    let expected = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ];
    let spaced = parse_ok(&with_base(&["--data-md5", hex])).download;
    assert_eq!(spaced.source().md5, expected);
    let equals = parse_ok(&with_base(&[&format!("--data-md5={}", hex.to_uppercase())])).download;
    assert_eq!(equals.source().md5, expected);
    let last = parse_ok(&with_base(&[
        "--data-md5",
        &"0".repeat(32),
        "--data-md5",
        hex,
    ]));
    assert_eq!(last.download.source().md5, expected);
    let bad = error_text(&with_base(&["--data-md5", "c32a"]));
    assert!(
        bad.contains("invalid MD5 'c32a': expected 32 hexadecimal digits"),
        "{bad}"
    );
}

#[test]
fn epochs_spellings() {
    let train = ["--mode", "server", "--data", "d"];
    let with = |extra: &[&str]| {
        let mut args = train.to_vec();
        args.extend_from_slice(extra);
        parse_ok(&args).epochs()
    };
    assert_eq!(with(&[]), 1);
    assert_eq!(with(&["--epochs", "3"]), 3);
    assert_eq!(with(&["--epochs=4"]), 4);
    assert_eq!(with(&["-e", "5"]), 5);
    assert_eq!(with(&["-e", "5", "--epochs", "6"]), 6);
}

#[test]
fn epochs_invalid_or_with_model() {
    let zero = error_text(&["--mode", "server", "--data", "d", "--epochs", "0"]);
    assert!(
        zero.contains("the epoch count must be at least 1"),
        "{zero}"
    );
    let conflict = error_text(&with_base(&["--epochs", "2"]));
    assert!(conflict.contains("cannot be used with"), "{conflict}");
}

#[test]
fn seed_and_save_spellings() {
    let cli = parse_ok(&[
        "--mode",
        "server",
        "--data",
        "d",
        "--seed",
        "9",
        "--save=out.ckpt",
    ]);
    assert_eq!(cli.seed, 9);
    assert_eq!(cli.save, Some(PathBuf::from("out.ckpt")));
    let cli = parse_ok(&["--mode", "server", "--data", "d", "--seed=1", "--seed", "2"]);
    assert_eq!(cli.seed, 2);
    let bad = error_text(&["--mode", "server", "--data", "d", "--seed", "x1"]);
    assert!(
        bad.contains("invalid value 'x1' for '--seed <SEED>'"),
        "{bad}"
    );
    let conflict = error_text(&with_base(&["--save", "x"]));
    assert!(conflict.contains("cannot be used with"), "{conflict}");
}

#[test]
fn lock_file_spellings() {
    assert_eq!(parse_ok(&BASE).lock_file, PathBuf::from("/tmp/.lock"));
    assert_eq!(
        parse_ok(&with_base(&["--lock-file", "/x/l"])).lock_file,
        PathBuf::from("/x/l")
    );
    assert_eq!(
        parse_ok(&with_base(&["--lock-file=/y"])).lock_file,
        PathBuf::from("/y")
    );
}

#[test]
fn port_values() {
    assert_eq!(parse_port("8080"), Ok(8080));
    assert_eq!(parse_port("0"), Ok(0));
    let error = parse_port("80a").unwrap_err();
    assert_eq!(
        error,
        "invalid port environment variable '80a': expected an integer from 0 to 65535"
    );
    assert!(parse_port("70000").is_err());
}
